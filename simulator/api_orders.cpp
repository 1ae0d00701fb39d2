// certn-sim's orders: POST cases/order/ (check types given) and POST cases/order-package/ (the
// check types of a configured package), validated as DRF would; a new case sends its webhooks.
#include <algorithm>
#include <optional>

#include "api_detail.hpp"
#include "shapes.hpp"

namespace certn_sim::api_detail {

namespace {

bool valid_email(std::string_view email) {
  const std::size_t at = email.find('@');
  if (email.size() > 254 || at == 0 || at == std::string_view::npos ||
      email.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  const std::string_view domain = email.substr(at + 1);
  const std::size_t dot = domain.find('.');
  if (domain.empty() || dot == 0 || dot == std::string_view::npos || domain.back() == '.') {
    return false;
  }
  return std::none_of(email.begin(), email.end(), [](char ch) {
    return static_cast<unsigned char>(ch) <= ' ' || ch == '<' || ch == '>' || ch == ',';
  });
}

bool valid_check_type(std::string_view type) {
  return !type.empty() && type.size() <= 64 && std::all_of(type.begin(), type.end(), [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
  });
}

// The fields order and order-package share.
struct order_common {
  std::string email_address;
  bool return_invite_link = false;
};

void validate_common(const simdjson::dom::object& body, order_common& out,
                     std::vector<field_error>& errors) {
  simdjson::dom::element email;
  if (body["email_address"].get(email)) {
    errors.push_back({"required", "This field is required.", "email_address"});
  } else {
    std::string_view text;
    if (email.get_string().get(text) || !valid_email(text)) {
      errors.push_back({"invalid", "Enter a valid email address.", "email_address"});
    } else {
      out.email_address = text;
    }
  }
  for (const char* flag : {"send_invite_email", "return_invite_link"}) {
    simdjson::dom::element element;
    if (body[flag].get(element)) {
      continue;
    }
    bool value = false;
    if (element.get_bool().get(value)) {
      errors.push_back({"invalid", "Must be a valid boolean.", std::string(flag)});
    } else if (std::string_view(flag) == "return_invite_link") {
      out.return_invite_link = value;
    }
  }
  simdjson::dom::element claims;
  if (!body["input_claims"].get(claims) && !claims.is_object() && !claims.is_null()) {
    errors.push_back({"invalid", "Expected a dictionary of items.", std::string("input_claims")});
  }
}

http::response created_case(context& ctx, const new_case& spec, bool return_invite_link) {
  std::vector<event> events;
  case_record& c = ctx.cases.create_case(spec, now_utc(), events);
  ctx.send(events);
  case_options options;
  if (return_invite_link) {
    options.invite_link = ctx.base_url + "/applicant/invite/" + c.id + "/";
  }
  return json_response(status::created, case_json(c, ctx.config.shapes, options));
}

new_case order_defaults(const context& ctx, const order_common& common) {
  new_case spec;
  spec.email_address = common.email_address;
  spec.file_size = ctx.config.default_file_size;
  return spec;
}

}  // namespace

http::response order(context& ctx, const std::string& body_text) {
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  auto body = parse_body(parser, body_text, storage);
  if (body.error) {
    return std::move(*body.error);
  }
  std::vector<field_error> errors;
  order_common common;
  validate_common(body.object, common, errors);
  std::vector<std::string> check_types;
  simdjson::dom::element checks;
  const std::string attr = "check_types_with_arguments";
  if (body.object[attr].get(checks)) {
    errors.push_back({"required", "This field is required.", attr});
  } else if (!checks.is_object()) {
    errors.push_back({"invalid", "Expected a dictionary of items.", attr});
  } else {
    for (const auto field : simdjson::dom::object(checks)) {
      if (!valid_check_type(field.key)) {
        errors.push_back(
            {"invalid", "\"" + std::string(field.key) + "\" is not a valid check type.", attr});
      } else if (!field.value.is_object() && !field.value.is_null()) {
        errors.push_back({"invalid", "Arguments of " + std::string(field.key) +
                                         " must be a dictionary.", attr});
      } else {
        check_types.emplace_back(field.key);
      }
    }
    if (check_types.empty() && errors.empty()) {
      errors.push_back({"empty", "This field may not be empty.", attr});
    }
  }
  if (!errors.empty()) {
    return validation_error(std::move(errors));
  }
  new_case spec = order_defaults(ctx, common);
  spec.check_types = std::move(check_types);
  return created_case(ctx, spec, common.return_invite_link);
}

http::response order_package(context& ctx, const std::string& body_text) {
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  auto body = parse_body(parser, body_text, storage);
  if (body.error) {
    return std::move(*body.error);
  }
  std::vector<field_error> errors;
  order_common common;
  validate_common(body.object, common, errors);
  const package* chosen = nullptr;
  simdjson::dom::element element;
  if (body.object["package"].get(element)) {
    errors.push_back({"required", "This field is required.", std::string("package")});
  } else {
    std::string_view id;
    if (element.get_string().get(id)) {
      errors.push_back({"incorrect_type", "Incorrect type. Expected pk value.",
                        std::string("package")});
    } else {
      for (const package& p : ctx.config.packages) {
        if (p.id == id) {
          chosen = &p;
        }
      }
      if (chosen == nullptr) {
        errors.push_back({"does_not_exist",
                          "Invalid pk \"" + std::string(id) + "\" - object does not exist.",
                          std::string("package")});
      } else if (!chosen->active) {
        errors.push_back({"inactive", "Package \"" + chosen->id + "\" is inactive.",
                          std::string("package")});
      }
    }
  }
  if (!errors.empty()) {
    return validation_error(std::move(errors));
  }
  new_case spec = order_defaults(ctx, common);
  spec.check_types = chosen->check_types;
  return created_case(ctx, spec, common.return_invite_link);
}

}  // namespace certn_sim::api_detail
