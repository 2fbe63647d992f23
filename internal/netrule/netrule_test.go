package netrule

import (
	"net/netip"
	"testing"
)

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"93.184.216.34", true},
		{"8.8.8.8", true},
		{"2606:4700::1111", true},
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},  // 6to4 of 8.8.8.8
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"fc00::1", false},
		{"fd00:ec2::254", false},
		{"169.254.169.254", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"0.0.0.0", false},
		{"::", false},
		{"224.0.0.1", false},
		{"ff02::1", false},
		{"100.64.0.1", false},
		{"100.127.255.254", false},
		{"255.255.255.255", false},
		{"198.18.0.1", false},
		{"64:ff9b::7f00:1", false}, // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false},
		{"2002:a00:1::1", false}, // 6to4 of 10.0.0.1
		{"2001:db8::1", false},
	} {
		if got := Public(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("Public(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}

func TestParseEntry(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Entry
		bad  bool
	}{
		{in: "registry.example.org", want: Entry{Host: "registry.example.org"}},
		{in: "Registry.Example.org:5000", want: Entry{Host: "registry.example.org", Port: "5000"}},
		{in: "10.0.0.5:5000", want: Entry{Host: "10.0.0.5", Port: "5000"}},
		{in: "[::1]:5000", want: Entry{Host: "::1", Port: "5000"}},
		{in: "::1", want: Entry{Host: "::1"}},
		{in: "*.corp.example", want: Entry{Host: "corp.example", Wildcard: true}},
		{in: "*.corp.example:443", want: Entry{Host: "corp.example", Wildcard: true, Port: "443"}},
		{in: "docker.io", want: Entry{Host: "docker.io"}},
		{in: "localhost:5000", want: Entry{Host: "localhost", Port: "5000"}},
		{in: "", bad: true},
		{in: "https://registry.example.org", bad: true},
		{in: "registry.example.org/path", bad: true},
		{in: "registry.example.org:", bad: true},
		{in: "registry.example.org:99999", bad: true},
		{in: "registry.example.org:x", bad: true},
		{in: "*.10.0.0.1", want: Entry{Host: "10.0.0.1", Wildcard: true}, bad: true},
		{in: "reg*.example.org", bad: true},
		{in: "*", bad: true},
		{in: "-bad.example", bad: true},
	} {
		got, err := ParseEntry(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: parsed as %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestEntryWithinAndString(t *testing.T) {
	for _, tc := range []struct {
		entry, outer string
		within       bool
	}{
		{"pkgs.example.org", "pkgs.example.org", true},
		{"pkgs.example.org:443", "pkgs.example.org", true},
		{"pkgs.example.org:8080", "pkgs.example.org", false},
		{"pkgs.example.org:8080", "pkgs.example.org:8080", true},
		{"a.mirror.example.com", "*.mirror.example.com", true},
		{"*.a.mirror.example.com", "*.mirror.example.com", true},
		{"*.mirror.example.com", "*.mirror.example.com", true},
		{"mirror.example.com", "*.mirror.example.com", false},
		{"*.example.com", "*.mirror.example.com", false},
		{"*.mirror.example.com", "a.mirror.example.com", false},
		{"evilmirror.example.com", "*.mirror.example.com", false},
	} {
		e, err := ParseEntry(tc.entry)
		o, err2 := ParseEntry(tc.outer)
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		if got := e.Within(o); got != tc.within {
			t.Errorf("%s within %s: %v, want %v", tc.entry, tc.outer, got, tc.within)
		}
	}
	for _, s := range []string{"pkgs.example.org", "*.example.org:8443", "10.0.0.5:3142", "[::1]:5000", "::1"} {
		e, err := ParseEntry(s)
		if err != nil || e.String() != s {
			t.Errorf("%q: read back as %q (%v)", s, e.String(), err)
		}
	}
}
