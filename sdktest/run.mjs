// Runs the JavaScript SDK scenarios against a running gateway, for
// sdktest's Go tests (js_test.go), which start the stack and check the
// sink.
//
// Input, in the environment: SDKTEST_GATEWAY (the gateway's URL) and
// SDKTEST_SCENARIOS, a JSON object of scenario name → { writeKey, userId,
// tracks }. Output: one JSON line per scenario once its calls are made,
// {"scenario", "result": {screen, errors}}, then "done". Browser pages
// stay open, still sending, until standard input closes; then one line
// per browser scenario tells what its page saw, {"scenario", "seen":
// {remote, requests, console, pageErrors}}.
import { nodeScenarios } from './node-sdks.mjs';
import { browserScenarios, runBrowser } from './browser.mjs';

const gateway = process.env.SDKTEST_GATEWAY;
const scenarios = JSON.parse(process.env.SDKTEST_SCENARIOS || '{}');
const emit = (scenario, result) => process.stdout.write(`${JSON.stringify({ scenario, result })}\n`);
const emitSeen = (scenario, seen) => process.stdout.write(`${JSON.stringify({ scenario, seen })}\n`);

const browser = {};
const nodeRuns = [];
for (const [name, cfg] of Object.entries(scenarios)) {
  if (name in nodeScenarios) {
    nodeRuns.push(nodeScenarios[name]({ scenario: name, gateway, ...cfg })
      .catch((err) => ({ errors: [String(err?.stack ?? err)] }))
      .then((result) => emit(name, result)));
  } else if (name in browserScenarios) {
    browser[name] = cfg;
  } else {
    console.error(`unknown scenario ${name}`);
    process.exit(2);
  }
}
let close = async () => {};
const browserRun = Object.keys(browser).length === 0 ? Promise.resolve()
  : runBrowser(browser, gateway, emit).then((c) => { close = c; });
await Promise.all([...nodeRuns, browserRun]);
process.stdout.write('done\n');

// Keep the pages open until the Go side has what it needs.
process.stdin.resume();
await new Promise((resolve) => process.stdin.on('end', resolve).on('close', resolve));
await close(emitSeen);
process.exit(0);
