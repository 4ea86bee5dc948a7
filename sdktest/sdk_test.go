package sdktest

import "testing"

// TestSDKs runs every SDK scenario against one stack, in parallel.
func TestSDKs(t *testing.T) {
	goScenarios := map[string]func(*testing.T, *stack, string){
		"go-rudderstack": testGoRudderStack,
		"go-segment":     testGoSegment,
	}
	var names []string
	for name := range goScenarios {
		names = append(names, name)
	}
	names = append(names, jsScenarios...)
	st := startStack(t, names)
	for name, test := range goScenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, st, name)
		})
	}
	t.Run("js", func(t *testing.T) {
		t.Parallel()
		testJS(t, st)
	})
}
