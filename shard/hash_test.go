package shard

import (
	"encoding/csv"
	"os"
	"strconv"
	"testing"
)

// TestVectors checks For against testdata/vectors.csv, which was computed
// by an independent implementation of the documented hash.
func TestVectors(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/vectors.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 50 {
		t.Fatalf("vectors.csv has %d records, want at least 50", len(recs))
	}
	for _, rec := range recs[1:] {
		count, err1 := strconv.Atoi(rec[1])
		want, err2 := strconv.Atoi(rec[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("bad record %q", rec)
		}
		if got := For(rec[0], count); got != want {
			t.Errorf("For(%q, %d) = %d, want %d", rec[0], count, got, want)
		}
	}
}

// TestFNVConstants pins the hash to the published FNV-1a-64 values, so a
// change of hash function cannot pass by regenerating the vectors.
func TestFNVConstants(t *testing.T) {
	t.Parallel()
	// FNV-1a-64("") is the offset basis; FNV-1a-64("a") is from the FNV
	// reference test suite.
	const basis, a = uint64(0xcbf29ce484222325), uint64(0xaf63dc4c8601ec8c)
	if got, want := For("", 1<<30), int(basis%(1<<30)); got != want {
		t.Errorf(`For("", 2^30) = %d, want %d`, got, want)
	}
	if got, want := For("a", 1000003), int(a%1000003); got != want {
		t.Errorf(`For("a", 1000003) = %d, want %d`, got, want)
	}
}

func TestOrderingKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ user, anon, want string }{
		{"u1", "a1", "u1"},
		{"", "a1", "a1"},
		{"u1", "", "u1"},
	} {
		if got := OrderingKey(tc.user, tc.anon); got != tc.want {
			t.Errorf("OrderingKey(%q, %q) = %q, want %q", tc.user, tc.anon, got, tc.want)
		}
	}
}

// TestSpread checks that keys spread over shards roughly evenly.
func TestSpread(t *testing.T) {
	t.Parallel()
	const shards, keys = 128, 128 * 200
	counts := make([]int, shards)
	for i := range keys {
		counts[For("user-"+strconv.Itoa(i), shards)]++
	}
	for s, n := range counts {
		if n < 100 || n > 300 {
			t.Errorf("shard %d got %d of %d keys, want about %d", s, n, keys, keys/shards)
		}
	}
}
