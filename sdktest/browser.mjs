// The browser SDKs: each page entry in page/ is bundled with esbuild from
// the npm packages, served from a local origin (another port than the
// gateway's, so every call is cross-origin as on a real site), and run in
// headless Debian Chromium driven by playwright-core.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

// bundle builds page/<name>.js into one script exposing run() as sdkpage.run.
async function bundle(name) {
  const out = await esbuild.build({
    entryPoints: [path.join(here, 'page', `${name}.js`)],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: 'sdkpage',
    platform: 'browser',
    target: 'es2020',
    logLevel: 'error',
  });
  return out.outputFiles[0].text;
}

// serve answers /<name>.html and /<name>.js for each bundle, on 127.0.0.1.
async function serve(bundles) {
  const server = http.createServer((req, res) => {
    const name = path.basename(req.url.split('?')[0]).replace(/\.(html|js)$/, '');
    if (req.url === '/favicon.ico') {
      res.writeHead(204).end();
    } else if (!(name in bundles)) {
      res.writeHead(404).end('not found');
    } else if (req.url.includes('.js')) {
      res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundles[name]);
    } else {
      res.writeHead(200, { 'Content-Type': 'text/html' })
        .end(`<!doctype html><html><head><title>${name}</title><script src="/${name}.js"></script></head><body>ordo sdktest</body></html>`);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

// The browser scenarios: which page, and the SDK options on top of the
// data plane settings.
export const browserScenarios = {
  // Each event in its own XHR to /v1/<type>.
  'browser-rudderstack': { page: 'rudderstack', loadOptions: {} },
  // navigator.sendBeacon to /beacon/v1/batch?writeKey=…, text/plain.
  'browser-rudderstack-beacon': { page: 'rudderstack', loadOptions: { useBeacon: true, beaconQueueOptions: { flushQueueInterval: 500 } } },
  // Batches to /v1/batch.
  'browser-rudderstack-batch': { page: 'rudderstack', loadOptions: { queueOptions: { batch: { enabled: true, maxItems: 10, flushInterval: 500 } } } },
  // Each event in its own fetch to /v1/t, /v1/i, …
  'browser-segment': { page: 'segment', loadOptions: {} },
  // Batches to /v1/b, one request at a time.
  'browser-segment-batching': {
    page: 'segment',
    loadOptions: { integrations: { 'Segment.io': { deliveryStrategy: { strategy: 'batching', config: { size: 5, timeout: 1000 } } } } },
  },
};

// settle waits until a page has no request in flight and its network has
// been quiet for a moment, or 10 seconds: the Go side may see a request's
// events arrive at the sink before the browser's own events for its
// response reach this process, on a loaded machine.
async function settle(net) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (net.pending > 0 || Date.now() - net.last < 300)) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// runBrowser runs each of scenarios (name → { writeKey, userId, tracks })
// in a page of its own, calling report(name, result) once its calls are
// made. It returns a function that reports, for each scenario, what its
// page saw (seen(name, seen)) and closes the browser.
export async function runBrowser(scenarios, gateway, report) {
  const chromiumPath = process.env.SDKTEST_CHROMIUM || '/usr/bin/chromium';
  const names = [...new Set(Object.keys(scenarios).map((s) => browserScenarios[s].page))];
  const bundles = {};
  for (const name of names) bundles[name] = await bundle(name);
  const { server, origin } = await serve(bundles);
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // launch() gives the browser a fresh temporary profile.
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const gatewayOrigin = new URL(gateway).origin;
  const pagesSeen = {};
  await Promise.all(Object.entries(scenarios).map(async ([scenario, cfg]) => {
    const { page: pageName, loadOptions } = browserScenarios[scenario];
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen = { remote: [], requests: [], console: [], pageErrors: [] };
    // Requests not finished yet, and when the page's network last did
    // anything: see settle.
    const net = { pending: 0, last: Date.now() };
    const done = () => { net.pending -= 1; net.last = Date.now(); };
    page.on('request', (req) => {
      net.pending += 1;
      net.last = Date.now();
      const u = new URL(req.url());
      if (u.origin !== origin && u.origin !== gatewayOrigin) seen.remote.push(req.url());
    });
    page.on('requestfinished', done);
    page.on('requestfailed', done);
    page.on('response', (resp) => {
      const u = new URL(resp.url());
      if (u.origin === gatewayOrigin) seen.requests.push(`${resp.request().method()} ${u.pathname} ${resp.status()}`);
    });
    page.on('requestfailed', (req) => seen.requests.push(`${req.method()} ${new URL(req.url()).pathname} failed: ${req.failure()?.errorText}`));
    page.on('console', (msg) => { if (msg.type() === 'error' || msg.type() === 'warning') seen.console.push(`${msg.type()}: ${msg.text()}`); });
    page.on('pageerror', (err) => seen.pageErrors.push(String(err)));
    let result;
    try {
      await page.goto(`${origin}/${pageName}.html`);
      result = await page.evaluate((c) => sdkpage.run(c), { scenario, ...cfg, gateway, loadOptions });
    } catch (err) {
      result = { errors: [String(err)] };
    }
    // Requests go on after the calls return: what the page saw is
    // reported when the Go side has seen the events arrive, or given up.
    report(scenario, result);
    pagesSeen[scenario] = { seen, net };
  }));
  return async (seenReport) => {
    for (const [scenario, { seen, net }] of Object.entries(pagesSeen)) {
      await settle(net);
      seenReport(scenario, seen);
    }
    await browser.close();
    server.close();
  };
}
