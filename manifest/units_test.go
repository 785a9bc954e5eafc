package manifest

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30m", 30 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"2d", 48 * time.Hour, false},
		{"0s", 0, false},
		{"2 hours", 0, true},
		{"d", 0, true},
		{"-1h", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		str     string
		wantErr bool
	}{
		{"2g", 2 << 30, "2g", false},
		{"512m", 512 << 20, "512m", false},
		{"2GiB", 2 << 30, "2g", false},
		{"1.5g", 3 << 29, "1536m", false},
		{"1024", 1024, "1k", false},
		{"100", 100, "100", false},
		{"lots", 0, "", true},
		{"2x", 0, "", true},
		{"-1g", 0, "", true},
		{"0", 0, "", true},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != tt.str {
			t.Errorf("ByteSize(%d).String() = %q, want %q", got, got.String(), tt.str)
		}
	}
}
