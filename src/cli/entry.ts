// The process entry of the CLI (bin/hubcache.js, and the tests' child process). `--version` alone
// is answered from version.ts only: loading the CLI (commander, the Cache and the HTTP client,
// ~75 modules) would take longer than the rest of the process's start-up.
const argv = process.argv.slice(2);
// A reader that stops early (`hubcache ls | head`) closes the pipe: end quietly, as other tools
// do on SIGPIPE, instead of printing an EPIPE stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
  const { VERSION } = await import('../version.js');
  process.stdout.write(`${VERSION}\n`); // what commander's .version() prints
} else {
  const { main } = await import('./main.js');
  process.exitCode = await main(argv);
}
