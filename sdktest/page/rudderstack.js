// RudderStack's JavaScript SDK v3 from npm, as a page would use it with a
// self-hosted data plane: load(writeKey, dataPlaneUrl, { configUrl }), the
// source config then coming from the gateway's /sourceConfig/. The bundled
// variant carries its plugins, so nothing is loaded from RudderStack's CDN.
import { RudderAnalytics } from '@rudderstack/analytics-js/bundled';
import { plan } from '../plan.mjs';

export async function run({ scenario, writeKey, userId, tracks, gateway, loadOptions }) {
  const analytics = new RudderAnalytics();
  const errors = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the SDK did not get ready within 15s')), 15000);
    analytics.load(writeKey, gateway, {
      configUrl: gateway,
      logLevel: 'WARN',
      onLoaded: () => {},
      ...loadOptions,
    });
    analytics.ready(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  // The browser SDK has no screen call.
  for (const c of plan(scenario, tracks, false)) {
    switch (c.type) {
      case 'identify': analytics.identify(userId, { plan: c.mark }); break;
      case 'track': analytics.track(c.mark, { sdk: 'analytics-js' }); break;
      case 'page': analytics.page(c.mark); break;
      case 'group': analytics.group(c.mark); break;
      case 'alias': analytics.alias(userId, c.mark); break;
    }
  }
  return { screen: false, errors };
}
