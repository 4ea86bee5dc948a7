// The Node SDKs, each pointed at the gateway as its README says.
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import { plan } from './plan.mjs';

// rudderstack: new Analytics(writeKey, { dataPlaneUrl }), then flush().
async function rudderstack({ scenario, writeKey, userId, tracks, gateway }) {
  const client = new RudderAnalytics(writeKey, { dataPlaneUrl: gateway, logLevel: 'error' });
  const calls = plan(scenario, tracks, true);
  const errors = [];
  const cb = (err) => err && errors.push(String(err));
  for (const c of calls) {
    switch (c.type) {
      case 'identify': client.identify({ userId, traits: { plan: c.mark } }, cb); break;
      case 'track': client.track({ userId, event: c.mark, properties: { sdk: 'rudder-sdk-node' } }, cb); break;
      case 'page': client.page({ userId, name: c.mark }, cb); break;
      case 'screen': client.screen({ userId, name: c.mark }, cb); break;
      case 'group': client.group({ userId, groupId: c.mark }, cb); break;
      case 'alias': client.alias({ userId, previousId: c.mark }, cb); break;
    }
  }
  await client.flush();
  return { screen: true, errors };
}

// segment: new Analytics({ writeKey, host }), then closeAndFlush().
async function segment({ scenario, writeKey, userId, tracks, gateway }) {
  const client = new SegmentAnalytics({ writeKey, host: gateway });
  const errors = [];
  client.on('error', (err) => errors.push(String(err?.reason ?? err?.code ?? err)));
  const calls = plan(scenario, tracks, true);
  for (const c of calls) {
    switch (c.type) {
      case 'identify': client.identify({ userId, traits: { plan: c.mark } }); break;
      case 'track': client.track({ userId, event: c.mark, properties: { sdk: 'analytics-node' } }); break;
      case 'page': client.page({ userId, name: c.mark }); break;
      case 'screen': client.screen({ userId, name: c.mark }); break;
      case 'group': client.group({ userId, groupId: c.mark }); break;
      case 'alias': client.alias({ userId, previousId: c.mark }); break;
    }
  }
  await client.closeAndFlush({ timeout: 20000 });
  return { screen: true, errors };
}

export const nodeScenarios = { 'node-rudderstack': rudderstack, 'node-segment': segment };
