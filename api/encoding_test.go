package api

import "testing"

func TestEncodeOutput(t *testing.T) {
	for _, tt := range []struct{ in, text, enc string }{
		{"héllo\n", "héllo\n", ""},
		{"", "", ""},
		{"\xff\x00", "/wA=", "base64"},
		{"ok\xc3", "b2vD", "base64"}, // a UTF-8 sequence cut short
	} {
		if text, enc := EncodeOutput(tt.in); text != tt.text || enc != tt.enc {
			t.Errorf("EncodeOutput(%q) = %q, %q; want %q, %q", tt.in, text, enc, tt.text, tt.enc)
		}
	}
}
