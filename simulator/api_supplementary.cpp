// certn-sim's supplementary resources of a case: its files (with presigned download URLs) and its
// supplementary information.
#include "api_detail.hpp"
#include "shapes.hpp"

namespace certn_sim::api_detail {

http::response supplementary_files(context& ctx, const case_record& c) {
  const auto presign = [&ctx](const file_record& file) { return ctx.presign("files/" + file.id); };
  return json_response(status::ok, supplementary_files_json(c, ctx.config.shapes, presign));
}

http::response supplementary_information(const context& ctx, const case_record& c) {
  return json_response(status::ok, supplementary_information_body(c, ctx.config.shapes));
}

}  // namespace certn_sim::api_detail
