package server

import (
	"bufio"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// outputEvent is an output event as a client decodes it.
type outputEvent struct {
	Type     string `json:"type"`
	Data     string `json:"data"`
	Encoding string `json:"encoding,omitempty"`
}

func TestPartialRune(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 0},
		{"é", 0},
		{"a\xc3", 1},        // first byte of é
		{"a\xe2\x82", 2},    // two of €'s three bytes
		{"\xf0\x9f\x98", 3}, // three of 😀's four
		{"\xf0\x9f\x98\x80", 0},
		{"a\xff", 0}, // never the start of a character
		{"a\x82", 0}, // a continuation byte alone
		{"\xe2\x82\xac\xc3", 1},
	} {
		if got := partialRune([]byte(tc.in)); got != tc.want {
			t.Errorf("partialRune(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestOutputEvents feeds output in pieces and reads the events back: a
// character split between writes is sent whole, bytes that are not UTF-8
// go as base64, and the held-back start of a character at the end goes
// out on close.
func TestOutputEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   []outputEvent
	}{
		{"text", []string{"hello ", "world"}, []outputEvent{{"stdout", "hello ", ""}, {"stdout", "world", ""}}},
		{"é split in two", []string{"caf\xc3", "\xa9!"}, []outputEvent{{"stdout", "caf", ""}, {"stdout", "é!", ""}}},
		{"€ in three", []string{"\xe2", "\x82", "\xac"}, []outputEvent{{"stdout", "€", ""}}},
		{"not UTF-8", []string{"a\xffb"}, []outputEvent{{"stdout", "Yf9i", "base64"}}},
		{"ends inside a character", []string{"x\xe2\x82"}, []outputEvent{{"stdout", "x", ""}, {"stdout", "4oI=", "base64"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s := newEventStream(rec)
			stdout, _, flush := s.outputs()
			for _, w := range tc.writes {
				if n, err := stdout.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			flush()
			if ct := rec.Header().Get("Content-Type"); ct != ndjsonType {
				t.Errorf("Content-Type %q", ct)
			}
			var got []outputEvent
			sc := bufio.NewScanner(strings.NewReader(rec.Body.String()))
			for sc.Scan() {
				var ev outputEvent
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				got = append(got, ev)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("events %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestResultEvent: the last event holds the plain answer's fields.
func TestResultEvent(t *testing.T) {
	rec := httptest.NewRecorder()
	newEventStream(rec).result(map[string]any{"status": "ok", "id": "x"})
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["type"] != "result" || got["status"] != "ok" || got["id"] != "x" || len(got) != 3 {
		t.Errorf("result event %v", got)
	}
}

// TestAppendJSONText: the hand-built string decodes to the text it was
// made from, whatever characters it holds.
func TestAppendJSONText(t *testing.T) {
	for _, text := range []string{"", "plain", "quote \" backslash \\ slash /", "\n\r\t\x00\x01\x1f\x7f", "<html> & é € 😀", "\u2028\u2029"} {
		line := append(appendJSONText([]byte(`"`), []byte(text)), '"')
		var got string
		if err := json.Unmarshal(line, &got); err != nil || got != text {
			t.Errorf("%q: encoded %s, decoded %q, %v", text, line, got, err)
		}
	}
}
