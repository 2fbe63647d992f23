package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// abBlock is how many back-to-back requests one daemon gets before the
// other takes its turn: short enough that the host's own drift (this VM's
// neighbours come and go) falls on both binaries alike.
const abBlock = 50

// abSide is one binary's daemon and what its requests took.
type abSide struct {
	bin  string
	d    *daemon
	lat  []time.Duration
	cpu  time.Duration
	runs int
	// blockP50 holds the p50 of each of its blocks, for the count of
	// blocks each side won against the other's block of the same round.
	blockP50 []time.Duration
}

// abCompare runs the pooled back-to-back row for two binaries, each with
// a daemon of its own, the two taking turns in blocks of abBlock requests
// (the order swapped every round), and prints each one's figures. It is
// how a change is measured on a noisy host: two `-only api` runs, minutes
// apart, differ by more than most changes do.
func abCompare(ctx context.Context, bins [2]string, rootfs string, n int, pace time.Duration) (string, error) {
	var sides [2]*abSide
	for i, bin := range bins {
		d, err := startDaemon(bin, rootfs, "bench", "", "--pool-size", strconv.Itoa(benchPoolSize))
		if err != nil {
			for _, s := range sides[:i] {
				s.d.stop()
			}
			return "", fmt.Errorf("%s: %w", bin, err)
		}
		sides[i] = &abSide{bin: bin, d: d}
	}
	defer func() {
		for _, s := range sides {
			s.d.stop()
		}
	}()
	for _, s := range sides { // warm-up: each pool at its size for the pace, caches warm
		sub := s.d.subject(rowAPI, []string{"/bin/true"}, "bench")
		sub.pace, sub.parked = pace, s.d.parked
		if err := warmPool(ctx, sub); err != nil {
			return "", fmt.Errorf("%s: %w", s.bin, err)
		}
	}
	for round := 0; round*abBlock < n; round++ {
		order := sides
		if round%2 == 1 {
			order = [2]*abSide{sides[1], sides[0]}
		}
		for _, s := range order {
			if err := s.block(ctx, abBlock, pace); err != nil {
				return "", err
			}
		}
	}
	return abText(sides, pace), nil
}

// block sends k requests one after another (pace apart, when set) and
// records their latencies and the daemon's CPU.
func (s *abSide) block(ctx context.Context, k int, pace time.Duration) error {
	sub := s.d.subject(rowAPI, []string{"/bin/true"}, "bench")
	sub.pace = pace
	lat, cpu, err := sequential(ctx, sub, k)
	if err != nil {
		return fmt.Errorf("%s: %w", s.bin, err)
	}
	s.cpu += cpu
	s.runs += k
	s.lat = append(s.lat, lat...)
	s.blockP50 = append(s.blockP50, pct(lat, 0.5))
	return nil
}

func abText(sides [2]*abSide, pace time.Duration) string {
	var b strings.Builder
	mode := "back to back"
	if pace > 0 {
		mode = fmt.Sprintf("a request every %v", pace)
	}
	fmt.Fprintf(&b, "Pooled API, %s, %d requests each in blocks of %d, the two daemons taking turns:\n\n", mode, sides[0].runs, abBlock)
	b.WriteString("| binary | p50 ms | p90 ms | p99 ms | CPU/run ms | blocks with the lower p50 |\n|---|---|---|---|---|---|\n")
	for i, s := range sides {
		other := sides[1-i]
		wins := 0
		for j := range min(len(s.blockP50), len(other.blockP50)) {
			if s.blockP50[j] < other.blockP50[j] {
				wins++
			}
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f | %d of %d |\n", s.bin,
			ms(pct(s.lat, 0.5)), ms(pct(s.lat, 0.9)), ms(pct(s.lat, 0.99)),
			ms(s.cpu/time.Duration(max(s.runs, 1))), wins, len(s.blockP50))
	}
	return b.String()
}
