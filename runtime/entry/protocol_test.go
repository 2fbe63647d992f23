package entry

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"testing"
)

func TestLaunchRoundTrip(t *testing.T) {
	in := &Launch{
		Args:    []string{"/bin/sh", "-c", "echo \xff\x00 binary", ""},
		Env:     []string{"A=1", "B="},
		Dir:     "/work",
		Rlimits: []Rlimit{{Resource: 7, Cur: 256, Max: 256}},
		Filter:  []byte{1, 2, 3, 4, 5, 6, 7, 8},
		Rows:    24, Cols: 80,
		CPUs: []int{0, 3},
	}
	roundTrip(t, in, UnmarshalLaunch)
}

// roundTrip checks that what in marshals to decodes to in again.
func roundTrip[T interface{ Marshal() []byte }](t *testing.T, in T, unmarshal func([]byte) (T, error)) {
	t.Helper()
	out, err := unmarshal(in.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

// badInput is a message a decoder must refuse.
type badInput struct {
	name string
	data []byte
}

// malformed are what every message can be beside good: nothing, one byte
// short, one byte too many.
func malformed(good []byte) []badInput {
	return []badInput{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
	}
}

func TestUnmarshalLaunchRejectsBadInput(t *testing.T) {
	good := (&Launch{Args: []string{"x"}, Filter: []byte{0}}).Marshal()
	tests := append(malformed(good), []badInput{
		{"no command", (&Launch{}).Marshal()},
		{"empty command", (&Launch{Args: []string{""}}).Marshal()},
		{"rows without cols", (&Launch{Args: []string{"x"}, Filter: []byte{0}, Rows: 3}).Marshal()},
		{"a CPU list longer than the message", func() []byte {
			b := (&Launch{Args: []string{"x"}, Filter: []byte{0}, CPUs: []int{1}}).Marshal()
			b[len(b)-16+7] = 200 // the list's count
			return b
		}()},
		{"huge count", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, good...)},
	}...)
	for _, tt := range tests {
		if _, err := UnmarshalLaunch(tt.data); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func TestMessageFraming(t *testing.T) {
	var buf bytes.Buffer
	if err := writeMsg(&buf, msgStarted, []byte{0, 0, 0, 2}); err != nil {
		t.Fatal(err)
	}
	typ, payload, err := readMsg(bufio.NewReader(&buf))
	if err != nil || typ != msgStarted || !bytes.Equal(payload, []byte{0, 0, 0, 2}) {
		t.Fatalf("got %q %v %v", typ, payload, err)
	}
	oversized := []byte{byte(msgLaunch), 0xff, 0xff, 0xff, 0xff}
	if _, _, err := readMsg(bufio.NewReader(bytes.NewReader(oversized))); err == nil {
		t.Error("a message over MaxMessage was accepted")
	}
}

func TestPrepareRoundTrip(t *testing.T) {
	for _, in := range []*Prepare{
		{Masked: []string{"/proc/kcore"}, Readonly: []string{"/proc/sys"}, ShmOptions: "size=65536", PtsOptions: "newinstance",
			Net: NetKeep, Filter: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Masked: []string{}, Readonly: []string{}, Net: NetShare, Filter: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Masked: []string{}, Readonly: []string{}, Filter: []byte{0, 0, 0, 0, 0, 0, 0, 0}},
	} {
		roundTrip(t, in, UnmarshalPrepare)
	}
}

func TestUnmarshalPrepareRejectsBadInput(t *testing.T) {
	good := (&Prepare{Filter: make([]byte, 8)}).Marshal()
	share := func(v byte) []byte {
		b := (&Prepare{Filter: make([]byte, 8)}).Marshal()
		b[len(b)-8-8-1] = v // the last byte of the network word
		return b
	}
	tests := append(malformed(good), []badInput{
		{"no filter", (&Prepare{}).Marshal()},
		{"a filter of 7 bytes", (&Prepare{Filter: make([]byte, 7)}).Marshal()},
		{"a network word of 3", share(3)},
	}...)
	if p, err := UnmarshalPrepare(share(2)); err != nil || p.Net != NetKeep {
		t.Fatalf("the test's own network word 2: %+v, %v", p, err)
	}
	for _, tt := range tests {
		if _, err := UnmarshalPrepare(tt.data); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func TestPrepareRights(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name      string
		work, tmp *os.File
		wantFiles int
		wantErr   bool
	}{
		{"none: keep the sandbox's", nil, nil, 0, false},
		{"both", f, f, 2, false},
		{"work alone", f, nil, 0, true},
		{"tmp alone", nil, f, 0, true},
	}
	for _, tt := range tests {
		files, err := mountRights(tt.work, tt.tmp)
		if (err != nil) != tt.wantErr || len(files) != tt.wantFiles {
			t.Errorf("%s: %d files, err %v", tt.name, len(files), err)
		}
	}
}
