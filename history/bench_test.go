package history

import (
	"strings"
	"testing"
)

func BenchmarkAppend(b *testing.B) {
	s, _ := open(b, Options{MaxRecords: 1000})
	defer s.Close()
	r := Record{Kind: KindAction, Course: "flotpython", Student: "alice", Action: "stop", Message: "idle 2h14m ≥ 2h"}
	for b.Loop() {
		if _, err := s.Append(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQuery(b *testing.B) {
	s, _ := open(b, Options{})
	defer s.Close()
	log := strings.Repeat("Step 1/7 : RUN something long\n", 2000)
	for i := 0; i < 2000; i++ {
		k := KindAction
		if i%10 == 0 {
			k = KindBuild
		}
		if _, err := s.Append(b.Context(), Record{Kind: k, Course: "c", Log: log}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Query(b.Context(), Query{Kinds: []Kind{KindBuild}, Limit: 20}); err != nil {
			b.Fatal(err)
		}
	}
}
