package secstatus

import "testing"

// BenchmarkEvaluate evaluates a two-party call across a TLS/SRTP trunk
// with video on one side.
func BenchmarkEvaluate(b *testing.B) {
	a := enc("SEP001122334455")
	a.Video, a.VideoSRTP = true, true
	c := &Call{Devices: []Device{a, enc("SEP665544332211")}, Trunks: []Trunk{{Name: "t", TLS: true, SRTP: true}}}
	o := &Options{MixedMode: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Evaluate(c, o); err != nil {
			b.Fatal(err)
		}
	}
}
