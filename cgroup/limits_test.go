package cgroup

import "testing"

func TestLimitsValidate(t *testing.T) {
	good := Limits{MemoryBytes: 128 << 20, CPUs: 0.5, Pids: 64}
	tests := []struct {
		name string
		mod  func(*Limits)
		ok   bool
	}{
		{"defaults", func(*Limits) {}, true},
		{"zero memory", func(l *Limits) { l.MemoryBytes = 0 }, false},
		{"tiny memory", func(l *Limits) { l.MemoryBytes = 1 << 20 }, false},
		{"negative cpus", func(l *Limits) { l.CPUs = -1 }, false},
		{"tiny cpus", func(l *Limits) { l.CPUs = 0.001 }, false},
		{"zero pids", func(l *Limits) { l.Pids = 0 }, false},
		{"many cpus", func(l *Limits) { l.CPUs = 16 }, true},
	}
	for _, tt := range tests {
		l := good
		tt.mod(&l)
		if err := l.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
}

func TestSpecTurnsSwapOff(t *testing.T) {
	r := Limits{MemoryBytes: 64 << 20, CPUs: 0.5, Pids: 10}.Spec()
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 {
		t.Errorf("memory %d, memory+swap %d: want equal", *r.Memory.Limit, *r.Memory.Swap)
	}
	if *r.CPU.Quota != 50_000 || *r.CPU.Period != 100_000 {
		t.Errorf("quota %d/%d, want 50000/100000", *r.CPU.Quota, *r.CPU.Period)
	}
	if *r.Pids.Limit != 10 {
		t.Errorf("pids %d", *r.Pids.Limit)
	}
}

func TestSpecForSetsOOMGroupOnV2Only(t *testing.T) {
	l := Limits{MemoryBytes: 64 << 20, CPUs: 0.5, Pids: 10}
	if got := l.SpecFor(V2).Unified["memory.oom.group"]; got != "1" {
		t.Errorf("v2: memory.oom.group %q, want 1", got)
	}
	for _, m := range []Mode{Hybrid, V1} {
		if u := l.SpecFor(m).Unified; u != nil {
			t.Errorf("%s: unified %v, want none (libcontainer refuses it off v2)", m, u)
		}
	}
}
