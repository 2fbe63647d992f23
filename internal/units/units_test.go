package units

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"4096", 4096, false},
		{"1KiB", 1024, false},
		{"128MiB", 128 << 20, false},
		{"1GiB", 1 << 30, false},
		{"64m", 64 << 20, false},
		{" 2MiB ", 2 << 20, false},
		{"0", 0, true},
		{"-1", 0, true},
		{"-5MiB", 0, true},
		{"", 0, true},
		{"lots", 0, true},
		{"12XiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"10s", 10 * time.Second, false},
		{"1500ms", 1500 * time.Millisecond, false},
		{"0s", 0, true},
		{"-1s", 0, true},
		{"10", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
