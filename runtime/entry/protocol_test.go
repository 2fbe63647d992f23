package entry

import (
	"bufio"
	"bytes"
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
	out, err := UnmarshalLaunch(in.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

func TestUnmarshalLaunchRejectsBadInput(t *testing.T) {
	good := (&Launch{Args: []string{"x"}, Filter: []byte{0}}).Marshal()
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"no command", (&Launch{}).Marshal()},
		{"empty command", (&Launch{Args: []string{""}}).Marshal()},
		{"rows without cols", (&Launch{Args: []string{"x"}, Filter: []byte{0}, Rows: 3}).Marshal()},
		{"a CPU list longer than the message", func() []byte {
			b := (&Launch{Args: []string{"x"}, Filter: []byte{0}, CPUs: []int{1}}).Marshal()
			b[len(b)-16+7] = 200 // the list's count
			return b
		}()},
		{"huge count", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, good...)},
	}
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
