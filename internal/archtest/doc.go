// Package archtest holds tests that guard ordo's layout: every package
// documents itself once, programs in cmd/ stay thin, and no package is a
// grab bag (util, common, helpers). It has no code outside its tests.
package archtest
