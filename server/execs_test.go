package server

import (
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/limits"
)

func TestUntilSessionEnd(t *testing.T) {
	ms := func(v int64) *int64 { return &v }
	base := limits.Set{WallTime: 10 * time.Second, CPUTime: 10 * time.Second, CPUs: 2}
	tests := []struct {
		name      string
		asked     *api.Limits
		left      time.Duration
		wall, cpu time.Duration // 0: the remaining life (times cpus for cpu)
	}{
		{"nothing asked: the sandbox's life", nil, time.Hour, 0, 0},
		{"limits without times", &api.Limits{OutputBytes: ms(10)}, time.Hour, 0, 0},
		{"a wall time asked stays", &api.Limits{WallTimeMS: ms(5000)}, time.Hour, 10 * time.Second, 0},
		{"a CPU time asked stays", &api.Limits{CPUTimeMS: ms(5000)}, time.Hour, 0, 10 * time.Second},
		{"both asked", &api.Limits{WallTimeMS: ms(1), CPUTimeMS: ms(1)}, time.Hour, 10 * time.Second, 10 * time.Second},
		{"a sandbox at its end", nil, -time.Second, time.Millisecond, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := base
			untilSessionEnd(&l, tt.asked, time.Now().Add(tt.left))
			wantWall, wantCPU := tt.wall, tt.cpu
			if wantWall == 0 {
				wantWall = tt.left
			}
			if wantCPU == 0 {
				wantCPU = 2 * tt.left
			}
			near := func(got, want time.Duration) bool { return got <= want && got > want-time.Second }
			if !near(l.WallTime, wantWall) || !near(l.CPUTime, wantCPU) {
				t.Errorf("wall %v cpu %v, want about %v and %v", l.WallTime, l.CPUTime, wantWall, wantCPU)
			}
		})
	}
}
