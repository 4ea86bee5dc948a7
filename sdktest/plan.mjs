// The calls every scenario makes, as its user, in order: identify, tracks
// "Step 1" to "Step n", page, screen (where the SDK has one), group and
// alias. sdktest's Go side builds the same list to know what the sink must
// get (plan in go_sdk_test.go).
export function plan(scenario, tracks, withScreen) {
  const calls = [{ type: 'identify', mark: `plan-${scenario}` }];
  for (let i = 1; i <= tracks; i++) calls.push({ type: 'track', mark: `Step ${i}` });
  calls.push({ type: 'page', mark: 'Home' });
  if (withScreen) calls.push({ type: 'screen', mark: 'Main' });
  calls.push({ type: 'group', mark: `group-${scenario}` }, { type: 'alias', mark: `prev-${scenario}` });
  return calls;
}
