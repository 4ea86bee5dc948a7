// Segment's analytics.js 2.0 (analytics-next) from npm, as a page would use
// it with a self-hosted data plane: AnalyticsBrowser.load({ writeKey,
// cdnURL }), its settings, and with them the apiHost events go to, then
// coming from the gateway's /v1/projects/{writeKey}/settings.
import { AnalyticsBrowser } from '@segment/analytics-next';
import { plan } from '../plan.mjs';

export async function run({ scenario, writeKey, userId, tracks, gateway, loadOptions }) {
  const errors = [];
  const analytics = AnalyticsBrowser.load({ writeKey, cdnURL: gateway }, loadOptions ?? {});
  analytics.on('error', (e) => errors.push(`${e?.code}: ${e?.reason}`));
  await analytics; // settings loaded
  const pending = [];
  // Fired one after the other without waiting, as a page does.
  for (const c of plan(scenario, tracks, true)) {
    switch (c.type) {
      case 'identify': pending.push(analytics.identify(userId, { plan: c.mark })); break;
      case 'track': pending.push(analytics.track(c.mark, { sdk: 'analytics-next' })); break;
      case 'page': pending.push(analytics.page(c.mark)); break;
      case 'screen': pending.push(analytics.screen(c.mark)); break;
      case 'group': pending.push(analytics.group(c.mark)); break;
      case 'alias': pending.push(analytics.alias(userId, c.mark)); break;
    }
  }
  await Promise.all(pending);
  return { screen: true, errors };
}
