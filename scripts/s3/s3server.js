// Starts @20minutes/s3rver 4.0.4, which is published without its bin/ script (scripts/s3.sh).
require('@20minutes/s3rver/lib/cli.js').parseAsync(process.argv.slice(2), { from: 'user' });
