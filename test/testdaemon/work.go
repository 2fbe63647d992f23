package testdaemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Descendants lists pid's children, theirs, and so on. A child is listed
// under the thread that started it: every thread of each is read.
func Descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		data, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
				out = append(out, Descendants(c)...)
			}
		}
	}
	return out
}

// WorkGlob returns the files that match pattern (relative to /work) in
// the /work of the runs going on now, one path per file. A pooled run's
// /work is a mount of no host path: it is reached through the root of
// one of the daemon's descendants; a session's through its scratch
// directory.
func (d *Daemon) WorkGlob(pattern string) []string {
	seen := map[[2]uint64]bool{}
	var out []string
	add := func(matches []string) {
		for _, m := range matches {
			var st syscall.Stat_t
			if syscall.Stat(m, &st) != nil || seen[[2]uint64{st.Dev, st.Ino}] {
				continue
			}
			seen[[2]uint64{st.Dev, st.Ino}] = true
			out = append(out, m)
		}
	}
	m, _ := filepath.Glob(filepath.Join(d.RunDir, "*", "scratch", "*", "work", pattern))
	add(m)
	for _, pid := range Descendants(d.Pid()) {
		m, _ := filepath.Glob(filepath.Join(fmt.Sprintf("/proc/%d/root/work", pid), pattern))
		add(m)
	}
	return out
}
