package rootfs

import (
	"errors"
	"testing"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"main.py", true},
		{"src/util.h", true},
		{"a..b", true},
		{"", false},
		{".", false},
		{"/etc/passwd", false},
		{"../escape", false},
		{"a/../../escape", false},
		{"a/..", false},
		{"nul\x00byte", false},
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadFileName) {
			t.Errorf("CheckName(%q) error %v does not match ErrBadFileName", tt.name, err)
		}
	}
}
