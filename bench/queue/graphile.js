// bench/queue's side for graphile-worker, measured the way bench-queue measures our queue: JOBS
// no-op jobs added (graphile_worker.add_jobs) before the clock starts, then a worker in its default
// mode (one job per get_job, LISTEN/NOTIFY wake-up, default poll interval) runs them; jobs/s from
// the first task start to the last `job:complete` (emitted once the job's row is deleted). Then,
// with the worker idle, PICKUPS jobs added one at a time (graphile_worker.add_job, autocommit),
// PACE_MS apart: latency from the add's COMMIT answer to the task function's start.
// Usage: node graphile.js DSN JOBS CONCURRENCY POOL_SIZE PICKUPS PACE_MS
// Prints one line: jobs= seconds= rate= pickups= p50_ms= p99_ms=
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import graphileWorker from "graphile-worker";
import pg from "pg";

const { run, runMigrations, Logger } = graphileWorker;

const [dsn, jobsText, concurrencyText, poolText, pickupsText, paceText] = process.argv.slice(2);
if (paceText === undefined) {
  console.error("usage: node graphile.js DSN JOBS CONCURRENCY POOL_SIZE PICKUPS PACE_MS");
  process.exit(2);
}
const jobs = Number(jobsText);
const concurrency = Number(concurrencyText);
const poolSize = Number(poolText);
const pickups = Number(pickupsText);
const pace = Number(paceText);

// graphile-worker's own switch for its per-job "Completed task" line; bench-queue runs spdlog at
// warn for the same reason. Warnings and errors still show.
process.env.NO_LOG_SUCCESS = "1";
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    console.error(`graphile-worker ${level}: ${message}`);
  }
});

const client = new pg.Client({ connectionString: dsn });
await client.connect();
await runMigrations({ connectionString: dsn, logger });
await client.query("DELETE FROM graphile_worker._private_jobs");
await client.query(
  `SELECT graphile_worker.add_jobs(ARRAY(
     SELECT ROW('noop', json_build_object('i', g), NULL, NULL, NULL, NULL, NULL, NULL)
              ::graphile_worker.job_spec
     FROM generate_series(1, $1::int) g))`,
  [jobs],
);
await client.query("VACUUM ANALYZE graphile_worker._private_jobs");

let firstStart = 0;
let allDone = 0;
let noopDone = 0;
let pickupDone = 0;
const committed = new Array(pickups).fill(0);
const started = new Array(pickups).fill(0);
let wake = () => {};

const runner = await run({
  connectionString: dsn,
  concurrency,
  maxPoolSize: poolSize,
  noHandleSignals: true,
  logger,
  taskList: {
    noop: async () => {
      if (firstStart === 0) {
        firstStart = performance.now();
      }
    },
    pickup: async (payload) => {
      started[payload.i] = performance.now();
    },
  },
});
runner.events.on("job:complete", ({ job, error }) => {
  if (error) {
    console.error(`graphile-worker: job ${job.id} failed: ${error}`);
    process.exit(1);
  }
  if (job.task_identifier === "noop" && ++noopDone === jobs) {
    allDone = performance.now();
    wake();
  } else if (job.task_identifier === "pickup") {
    ++pickupDone;
    wake();
  }
});
const until = async (condition) => {
  while (!condition()) {
    await new Promise((resolve) => {
      wake = resolve;
    });
  }
};

await until(() => noopDone === jobs);
const seconds = (allDone - firstStart) / 1000;

await sleep(200); // every worker idle, waiting for NOTIFY
for (let i = 0; i < pickups; ++i) {
  await client.query("SELECT graphile_worker.add_job('pickup', json_build_object('i', $1::int))", [
    i,
  ]);
  committed[i] = performance.now();
  await sleep(pace);
}
await until(() => pickupDone === pickups);

const left = await client.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs");
await runner.stop();
await client.end();
if (left.rows[0].n !== 0) {
  console.error(`graphile-worker: ${left.rows[0].n} jobs left in the table`);
  process.exit(1);
}
// A task may start a hair before the adder sees its COMMIT answer: that counts as 0.
const latency = committed.map((at, i) => Math.max(0, started[i] - at)).sort((a, b) => a - b);
const percentile = (p) => latency[Math.min(latency.length - 1, Math.round(p * (latency.length - 1)))];
console.log(
  `jobs=${jobs} seconds=${seconds.toFixed(3)} rate=${(jobs / seconds).toFixed(0)} ` +
    `pickups=${pickups} p50_ms=${percentile(0.5).toFixed(2)} p99_ms=${percentile(0.99).toFixed(2)}`,
);
