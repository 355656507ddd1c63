package netns

import "testing"

// ForTest returns a new topology that is closed when tb and its subtests
// finish; it fails tb if the topology cannot be created or torn down.
func ForTest(tb testing.TB) *Topology {
	tb.Helper()
	t, err := New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := t.Close(); err != nil {
			tb.Errorf("netns teardown: %v", err)
		}
	})
	return t
}
