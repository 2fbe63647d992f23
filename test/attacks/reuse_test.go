package attacks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The reuse attacks (issue 16): nothing a run does may be observable by a
// later run of another owner, nor by one running at the same time. Owner A
// (alice) plants something a sandbox could keep from one run to the next;
// owner B (bob) looks for it. Each case runs:
//
//   - a baseline: B's look with no A before it, twice (it must be stable);
//   - a control: A's plant and B's look in ONE run (one sandbox), where the
//     look must see the plant, so that it is known to be able to fail (the
//     cases whose plant is refused outright, and the cgroup counters, have
//     none: there A's own result is the evidence);
//   - rounds of A then B, B sent as soon as A answers: B must see exactly
//     the baseline;
//   - pairs of A and B at once: A plants and holds, B looks while A holds.
//
// The daemon has a warm pool of one, so that the engine, which gives a
// used sandbox back to the pool, hands B the very sandbox A ran in (each
// case checks that it did at least once).

const (
	reuseRounds = 3 // A then B
	reusePairs  = 2 // A and B at once
)

// TestReuseAttacks runs the reuse attacks against a daemon of their own: JWT
// callers, so that A and B are different users, and a warm pool of one.
func TestReuseAttacks(t *testing.T) {
	s := newSuite(t, append([]string{"--pool-size", "1"}, jwtFlags(t)...)...)
	o := owners{a: client.NewWithToken(s.d.Socket, signToken(t, "alice")), b: client.NewWithToken(s.d.Socket, signToken(t, "bob"))}
	for i, a := range reuseAttacks(o) {
		t.Run(a.class+"/"+a.name, func(t *testing.T) { s.runAttack(t, 950+i, a) })
	}
	if n, ok := metric(s.d, "sandboxd_internal_errors_total"); !ok || n != 0 {
		t.Errorf("sandboxd_internal_errors_total is %v (found: %v) after the reuse attacks, want 0", n, ok)
	}
}

// TestReuseKeepsANetworkForItsOwnerOnly: a reused sandbox gives a run the
// network namespace of the last run when both are the same owner's, and a
// new one otherwise (runtime/reuse.go, netFor). What a namespace keeps
// after its processes are gone shows which: its loopback's counters in
// /proc/net/dev, 0 in a new one. Alice sends a packet; her next run in
// that sandbox sees it counted (the namespace was kept, so the test can
// fail); bob's next run there does not, and neither does alice's after
// bob's (the kept one is then bob's). A namespace that still holds a TCP
// socket is not kept even for its owner: alice closes a connection on
// port 7798 server side first (its socket stays in TIME_WAIT for a
// minute), and her next run in that sandbox can bind 7798.
func TestReuseKeepsANetworkForItsOwnerOnly(t *testing.T) {
	s := newSuite(t, append([]string{"--pool-size", "1"}, jwtFlags(t)...)...)
	o := owners{a: client.NewWithToken(s.d.Socket, signToken(t, "alice")), b: client.NewWithToken(s.d.Socket, signToken(t, "bob"))}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const look = "awk '/lo:/ { print $2 }' /proc/net/dev"
	const send = "probe connect 7795 >/dev/null; " + look
	run := func(c *client.Client, script string) *api.ExecuteResponse {
		t.Helper()
		r, err := s.execAs(ctx, c, api.ExecuteRequest{Cmd: sh(script)}, "netns")
		if err != nil || r.Status != runtime.StatusOK {
			t.Fatalf("%q: %s %s", script, describe(r, err), stderrOf(r))
		}
		return r
	}
	steps := []struct {
		who  string
		c    *client.Client
		want string // the bytes lo received: "kept" for more than 0
	}{
		{"alice again", o.a, "kept"},
		{"bob", o.b, "0\n"},
		{"alice after bob", o.a, "0\n"},
	}
	tried := 0
	for round := 0; round < 5 && tried < len(steps); round++ {
		plant := run(o.a, send)
		if plant.Run.Stdout == "0\n" {
			t.Fatalf("alice's connection left lo's counters at %q", plant.Run.Stdout)
		}
		last := plant
		for _, st := range steps {
			r := run(st.c, look)
			if testdaemon.SandboxID(r.ID) != testdaemon.SandboxID(last.ID) {
				break // another sandbox: nothing proven, try another round
			}
			last = r
			tried++
			kept := r.Run.Stdout != "0\n"
			if st.want == "kept" && !kept {
				t.Errorf("%s in the sandbox of her last run: lo received %q bytes, want her run's kept", st.who, r.Run.Stdout)
			}
			if st.want != "kept" && r.Run.Stdout != st.want {
				t.Errorf("%s in the sandbox of another owner's last run: lo received %q bytes, want %q", st.who, r.Run.Stdout, st.want)
			}
		}
		if tried < len(steps) {
			tried = 0
		}
	}
	if tried < len(steps) {
		t.Fatalf("in 5 rounds, the runs never followed each other in one sandbox: nothing proven")
	}
	for round := 0; ; round++ {
		if round == 5 {
			t.Fatalf("in 5 rounds, alice's runs never followed each other in one sandbox: nothing proven")
		}
		closed := run(o.a, "reuse timewait 7798")
		if closed.Run.Stdout != "closed=OK\n" {
			t.Fatalf("alice's connection: %q", closed.Run.Stdout)
		}
		bind := run(o.a, "reuse bindtcp 7798")
		if testdaemon.SandboxID(bind.ID) != testdaemon.SandboxID(closed.ID) {
			continue
		}
		if bind.Run.Stdout != "bind=OK\n" {
			t.Errorf("alice's run after hers that left a connection closing: %q, want bind=OK (a new network namespace)", bind.Run.Stdout)
		}
		break
	}
}

// jwtSecret signs the two owners' tokens (HS256, issuer "test", audience
// "sandboxd"), as in test/daemon.
const jwtSecret = "sandboxd-attacks-secret-0123456789abcdef"

func jwtFlags(t *testing.T) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(p, []byte(jwtSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--jwt-secret-file", p, "--jwt-issuer", "test", "--jwt-audience", "sandboxd"}
}

func signToken(t *testing.T, sub string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iss": "test", "aud": "sandboxd", "exp": time.Now().Add(time.Hour).Unix()}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// owners are the reuse attacks' two callers: different users of one daemon.
type owners struct{ a, b *client.Client }

// reuseCase is one thing A plants and B looks for. Both are busybox sh
// scripts: the plant gets A's marker as $0; the look gets B's marker as $0
// and A's as $AM.
type reuseCase struct {
	name, expected string
	plant          string
	planted        string // A's stdout, when it must be exactly this
	look           string
	clean          string // B's stdout with no A before it, when known
	control        bool   // the look must see the plant in the same run
	// judge, when set, replaces "B's stdout is the baseline's": it gets the
	// baseline, A's and B's answers.
	judge func(base, a, b *api.ExecuteResponse) (string, bool)
}

func (c reuseCase) attack(o owners) attack {
	return attack{class: "reuse", name: c.name, expected: c.expected, run: func(t *testing.T, s *suite, marker string) (string, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r := &reuseRun{t: t, s: s, o: o, c: c, ctx: ctx, marker: marker}
		return r.run()
	}}
}

// reuseRun is one case being run: its baseline once known.
type reuseRun struct {
	t      *testing.T
	s      *suite
	o      owners
	c      reuseCase
	ctx    context.Context
	marker string
	base   *api.ExecuteResponse
	// reused counts the rounds in which B ran in the very sandbox A had
	// just used (its run id names the sandbox: runtime.Sandbox.RunID).
	reused int
}

type answer struct {
	r   *api.ExecuteResponse
	err error
}

func (r *reuseRun) run() (string, bool) {
	if bad := r.baseline(); bad != "" {
		return "baseline: " + bad, false
	}
	seen, ctlSeen := fmt.Sprintf("as with no A: %q", clip(oneLine(r.base.Run.Stdout))), ""
	if r.c.control {
		ctl, bad := r.control()
		if bad != "" {
			return "control: " + bad, false
		}
		ctlSeen = fmt.Sprintf("; control saw %q", clip(oneLine(ctl)))
	}
	for i := 1; i <= reuseRounds; i++ {
		judged, bad := r.consecutive(i)
		if bad != "" {
			return fmt.Sprintf("A then B, round %d: %s", i, bad), false
		}
		if r.c.judge != nil {
			seen = judged
		}
	}
	if bad := r.concurrent(); bad != "" {
		return "A and B at once: " + bad, false
	}
	// Without reuse, the rounds would prove nothing about it.
	if r.reused == 0 {
		return fmt.Sprintf("B never ran in A's sandbox in %d rounds: nothing reused, nothing proven", reuseRounds), false
	}
	return fmt.Sprintf("B %s%s; B in A's own sandbox in %d of %d rounds", seen, ctlSeen, r.reused, reuseRounds), true
}

// plant runs A's plant as alice (hold: then a process named $0-ready for
// 2 s, that B runs beside).
func (r *reuseRun) plant(ma string, hold bool) answer {
	script := r.c.plant
	if hold {
		script += "\nsh -c 'sleep 2; :' \"$0-ready\""
	}
	resp, err := r.s.execAs(r.ctx, r.o.a, api.ExecuteRequest{Cmd: sh(script)}, ma)
	return answer{resp, err}
}

// look runs B's look as bob, A's marker in $AM.
func (r *reuseRun) look(mb, ma string) answer {
	resp, err := r.s.execAs(r.ctx, r.o.b, api.ExecuteRequest{Cmd: sh(r.c.look + "\nexit 0"), Env: map[string]string{"AM": ma}}, mb)
	return answer{resp, err}
}

// baseline runs B's look twice with no A before it: both must agree (and
// be c.clean when that is known), unless a judge compares them (the pids
// of a fresh namespace vary by one or two).
func (r *reuseRun) baseline() string {
	var outs []string
	for i := 1; i <= 2; i++ {
		b := r.look(fmt.Sprintf("%s-base%d", r.marker, i), r.marker+"-never")
		if b.err != nil || b.r.Status != runtime.StatusOK {
			return describe(b.r, b.err) + " " + clip(stderrOf(b.r))
		}
		if r.c.clean != "" && b.r.Run.Stdout != r.c.clean {
			return fmt.Sprintf("stdout %q, want %q", b.r.Run.Stdout, r.c.clean)
		}
		outs = append(outs, b.r.Run.Stdout)
		r.base = b.r
	}
	if outs[0] != outs[1] && r.c.judge == nil {
		return fmt.Sprintf("not stable: %q then %q", outs[0], outs[1])
	}
	return ""
}

// control runs plant and look in one request as alice: the look must not
// see the baseline. It returns what the look saw.
func (r *reuseRun) control() (string, string) {
	const sep = "==look==\n"
	m := r.marker + "-ctl"
	script := r.c.plant + "\necho '" + strings.TrimSuffix(sep, "\n") + "'\nAM=$0\n" + r.c.look + "\nexit 0"
	resp, err := r.s.execAs(r.ctx, r.o.a, api.ExecuteRequest{Cmd: sh(script)}, m)
	if err != nil || resp.Status != runtime.StatusOK {
		return "", describe(resp, err) + " " + clip(stderrOf(resp))
	}
	planted, looked, found := strings.Cut(resp.Run.Stdout, sep)
	if !found {
		return "", fmt.Sprintf("no separator in %q", clip(resp.Run.Stdout))
	}
	if r.c.planted != "" && planted != r.c.planted {
		return "", fmt.Sprintf("the plant printed %q, want %q", planted, r.c.planted)
	}
	// The one run stands for both A and B, each with its part of stdout
	// (Run is a pointer: each gets a copy of its own).
	ra, rb := *resp.Run, *resp.Run
	ra.Stdout, rb.Stdout = planted, looked
	a, b := *resp, *resp
	a.Run, b.Run = &ra, &rb
	_, flagged := r.compare(answer{&a, nil}, answer{&b, nil})
	if flagged == "" {
		return "", fmt.Sprintf("THE LOOK CANNOT FAIL: with the plant in the same run it saw %q, and no leak", clip(looked))
	}
	r.t.Logf("control (plant and look in one sandbox) flagged, as it must: %s", flagged)
	return looked, ""
}

// consecutive runs A's plant, then B's look as soon as A has answered. It
// returns what the case's judge saw, or what is wrong.
func (r *reuseRun) consecutive(i int) (string, string) {
	ma, mb := fmt.Sprintf("%s-a%d", r.marker, i), fmt.Sprintf("%s-b%d", r.marker, i)
	a := r.plant(ma, false)
	if bad := r.checkPlant(a); bad != "" {
		return "", bad
	}
	b := r.look(mb, ma)
	judged, bad := r.compare(a, b)
	if bad != "" {
		return "", bad
	}
	if a.r != nil && b.r != nil && testdaemon.SandboxID(a.r.ID) == testdaemon.SandboxID(b.r.ID) {
		r.reused++
	}
	if p := gone(ma); len(p) > 0 {
		return "", fmt.Sprintf("A's processes still on the host after B: %v", p)
	}
	return judged, ""
}

// concurrent runs reusePairs pairs at once: in each, B looks while A holds.
func (r *reuseRun) concurrent() string {
	bad := make([]string, reusePairs)
	var wg sync.WaitGroup
	for i := range bad {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bad[i] = r.pair(i + 1)
		}()
	}
	wg.Wait()
	var out []string
	for i, b := range bad {
		if b != "" {
			out = append(out, fmt.Sprintf("pair %d: %s", i+1, b))
		}
	}
	return strings.Join(out, "; ")
}

func (r *reuseRun) pair(i int) string {
	ma, mb := fmt.Sprintf("%s-ca%d", r.marker, i), fmt.Sprintf("%s-cb%d", r.marker, i)
	done := make(chan answer, 1)
	go func() { done <- r.plant(ma, true) }()
	deadline := time.Now().Add(20 * time.Second)
	for len(testdaemon.ProcessesWith(ma+"-ready")) == 0 {
		select {
		case a := <-done:
			return "A ended before it was ready: " + describe(a.r, a.err) + " " + clip(stderrOf(a.r))
		default:
		}
		if time.Now().After(deadline) {
			return "A never got ready"
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := r.look(mb, ma)
	held := len(testdaemon.ProcessesWith(ma+"-ready")) > 0
	a := <-done
	if bad := r.checkPlant(a); bad != "" {
		return bad
	}
	if !held {
		return "A's hold ended before B answered: they did not overlap"
	}
	_, bad := r.compare(a, b)
	return bad
}

// checkPlant wants A's run ok, with the stdout the case expects.
func (r *reuseRun) checkPlant(a answer) string {
	if a.err != nil || a.r.Status != runtime.StatusOK {
		return "A: " + describe(a.r, a.err) + " " + clip(stderrOf(a.r))
	}
	if r.c.planted != "" && a.r.Run.Stdout != r.c.planted {
		return fmt.Sprintf("A printed %q, want %q", a.r.Run.Stdout, r.c.planted)
	}
	return ""
}

// compare wants B's run ok and its stdout the baseline's, or the case's
// judge to accept it; it returns what the judge saw, or what is wrong.
func (r *reuseRun) compare(a, b answer) (string, string) {
	if b.err != nil || b.r.Status != runtime.StatusOK {
		return "", "B: " + describe(b.r, b.err) + " " + clip(stderrOf(b.r))
	}
	if strings.Contains(b.r.Run.Stdout+b.r.Run.Stderr, r.s.secret) {
		return "", "HOST SECRET READ by B"
	}
	if r.c.judge != nil {
		seen, ok := r.c.judge(r.base, a.r, b.r)
		if !ok {
			return "", "LEAK: " + seen
		}
		return seen, ""
	}
	if b.r.Run.Stdout != r.base.Run.Stdout {
		return "", fmt.Sprintf("LEAK: B saw %q, with no A before it %q", b.r.Run.Stdout, r.base.Run.Stdout)
	}
	return "", ""
}

// gone waits (up to 5 s: today's engine destroys a sandbox just after its
// answer) until no host process has marker m, and returns those left.
func gone(m string) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := testdaemon.ProcessesWith(m)
		if len(p) == 0 || time.Now().After(deadline) {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stderrOf(r *api.ExecuteResponse) string {
	if r == nil {
		return ""
	}
	return r.Run.Stderr
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", " | ") }

// freshPIDs: B's pid and its first child's are those of a fresh PID
// namespace: as low as with no A before it, give or take a few (libcontainer's
// init is a Go program whose threads take pids of the namespace before the
// program starts, how many depends on the load: the program is pid 5 or 6
// here), and nowhere near the pids A's 300 forks reached.
func freshPIDs(base, a, b *api.ExecuteResponse) (string, bool) {
	var p0, c0, p, c, last int
	_, err0 := fmt.Sscanf(base.Run.Stdout, "pid=%d child=%d", &p0, &c0)
	_, err := fmt.Sscanf(b.Run.Stdout, "pid=%d child=%d", &p, &c)
	_, errA := fmt.Sscanf(a.Run.Stdout, "forked 300 last=%d", &last)
	seen := fmt.Sprintf("pid=%d child=%d (no A: %d, %d; A's last fork: %d)", p, c, p0, c0, last)
	if err0 != nil || err != nil || errA != nil {
		return fmt.Sprintf("unreadable: B %q, no A %q, A %q", b.Run.Stdout, base.Run.Stdout, a.Run.Stdout), false
	}
	return seen, last >= 300 && p > 0 && p <= p0+8 && c > p && c <= c0+8
}

// ownCounters: B's memory peak and CPU time are its own, near the
// baseline's and far below what A used (A's plant proves it used them).
func ownCounters(base, a, b *api.ExecuteResponse) (string, bool) {
	seen := fmt.Sprintf("peak %d KiB, cpu %.0f ms (no A: %d KiB, %.0f ms; A: %d MiB, %.0f ms)",
		b.Run.MemoryPeakBytes/kib, b.Run.CPUTimeMS, base.Run.MemoryPeakBytes/kib, base.Run.CPUTimeMS, a.Run.MemoryPeakBytes/mib, a.Run.CPUTimeMS)
	aUsed := a.Run.MemoryPeakBytes >= 60*mib && a.Run.CPUTimeMS >= 250
	bOwn := b.Run.MemoryPeakBytes < base.Run.MemoryPeakBytes+8*mib && b.Run.MemoryPeakBytes < a.Run.MemoryPeakBytes/4 &&
		b.Run.CPUTimeMS < base.Run.CPUTimeMS+100 && b.Run.CPUTimeMS < a.Run.CPUTimeMS/2
	if !aUsed {
		seen = "A did not use what it should: " + seen
	}
	return seen, aUsed && bOwn
}

// What the /proc and /sys case writes and reads back: sysctls of the
// sandbox's own UTS, IPC and network namespaces, PID 1's and its own OOM
// score, the loopback's settings.
const reuseKnobs = `/proc/sys/kernel/hostname /proc/sys/kernel/domainname /proc/sys/kernel/shmmax /proc/sys/kernel/msgmax
/proc/sys/fs/mqueue/msg_max /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/ipv4/ping_group_range
/proc/sys/net/core/somaxconn /sys/class/net/lo/mtu /sys/class/net/lo/tx_queue_len /proc/1/oom_score_adj`

func reuseAttacks(o owners) []attack {
	var all []attack
	for _, c := range reuseCases() {
		all = append(all, c.attack(o))
	}
	return all
}

func reuseCases() []reuseCase {
	return []reuseCase{
		{name: "files left in /work, /tmp, /dev/shm (hidden, FIFO, link, unreadable dir, odd names, modes, xattrs)",
			expected: "B: empty dirs, default modes, no xattr",
			plant: `for d in /work /tmp /dev/shm; do
echo $0 > $d/$0; echo $0 > $d/.$0; mkdir -p $d/.h/.$0; echo $0 > $d/.h/.$0/.x; mkfifo $d/fifo-$0
ln -s /etc/passwd $d/ln-$0; mkdir $d/ro-$0; echo $0 > $d/ro-$0/f; chmod 0 $d/ro-$0; : > "$d/ $0 "; : > "$d/nl
$0"; done
for d in / /etc /dev /dev/pts /run /var /root /home /usr /bin /proc /sys; do echo $0 > $d/$0; done 2>/dev/null
chmod 0711 /work; chmod 0700 /tmp; reuse setxattr $0 /work /tmp >/dev/null
echo planted $(find /work /tmp /dev/shm -mindepth 1 2>/dev/null | wc -l)`,
			planted: "planted 33\n", // 10 in each; the name with a newline is two lines
			look: `stat -c '%n %a %u %h' /work /tmp /dev/shm
find /work /tmp /dev/shm -mindepth 1 | wc -l
find / \( -path /proc -o -path /sys \) -prune -o -name "*$AM*" -print 2>/dev/null | wc -l
reuse getxattr /work /tmp /dev/shm`,
			control: true},
		{name: "processes left running: background, setsid, nohup ignoring signals, stopped, double fork",
			expected: "B sees its own only; A's marker nowhere",
			plant: `sh -c 'sleep 30; :' $0-bg >/dev/null 2>&1 &
setsid sh -c 'sleep 30; :' $0-setsid >/dev/null 2>&1 &
nohup sh -c 'trap "" HUP TERM INT; sleep 30; :' $0-nohup >/dev/null 2>&1 &
sh -c 'kill -STOP $$; :' $0-stopped >/dev/null 2>&1 &
probe daemon $0-daemon; sleep 0.2; echo started`,
			planted: "daemonized\nstarted\n",
			look: `for d in /proc/[0-9]*; do read c < $d/comm; echo "$c"; done
p=$(echo "$AM" | sed 's/^./[&]/'); grep -l "$p" /proc/[0-9]*/cmdline 2>/dev/null | wc -l`,
			control: true},
		{name: "PID counter: A forks 300 processes, B reads its own pid and its first child's",
			expected: "B's pids as in a run with no A",
			plant:    `reuse forks 300`, look: `exec reuse pids`,
			judge: freshPIDs, control: true},
		{name: "tmpfs inode counter: A makes and removes 500 files in /work, /tmp and /dev/shm",
			expected: "B's first inodes as in a run with no A",
			plant: `for d in /work /tmp /dev/shm; do i=0; while [ $i -lt 500 ]; do : > $d/f$i; i=$((i+1)); done; done
rm -f /work/f* /tmp/f* /dev/shm/f*; echo made`,
			planted: "made\n",
			look:    `for d in /work /tmp /dev/shm; do : > $d/first; stat -c %i $d/first; done`,
			control: true},
		{name: "SysV shm segment, message queue and semaphore left with fixed keys",
			expected: "shmget, msgget, semget ENOENT; /proc/sysvipc empty",
			plant:    `attack shmhold 20516 0 && attack msghold 20517 0 && attack semhold 20518 0`,
			planted:  "holding shm\nstill held\nholding msg\nholding sem\n",
			look: `attack shmfind 20516; attack msgfind 20517; attack semfind 20518
cat /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem | grep -vc '^ *key'`,
			clean: "shmget=ENOENT\nmsgget=ENOENT\nsemget=ENOENT\n0\n", control: true},
		{name: "POSIX message queue and shm objects (/dev/shm/NAME, sem.NAME) left by name",
			expected: "mq_open ENOENT; /dev/shm empty",
			plant:    `held mqhold /sbx-reuse 0 && held mqhold /$0 0 && echo $0 > /dev/shm/sbx-reuse && echo $0 > /dev/shm/sem.sbx-reuse`,
			planted:  "mq_open=OK\nmq_open=OK\n",
			look:     `held mqueue /sbx-reuse; held mqueue /$AM; ls -A /dev/shm | wc -l`,
			clean:    "mq_open=ENOENT\nmq_open=ENOENT\n0\n", control: true},
		{name: "abstract Unix socket left listening (background and setsid)",
			expected: "B binds the name; ECONNREFUSED; not in /proc/net/unix",
			plant: `attack abshold sbx-reuse-abs 30000 >/dev/null & setsid attack abshold sbx-reuse-abs2 30000 >/dev/null &
sleep 0.3; grep -c '@sbx-reuse-abs' /proc/net/unix`,
			planted: "2\n",
			look:    `attack absconnect sbx-reuse-abs; reuse bindabs sbx-reuse-abs; reuse bindabs sbx-reuse-abs2; grep -c '@sbx-reuse' /proc/net/unix`,
			clean:   "connect=ECONNREFUSED\nbind=OK\nbind=OK\n0\n", control: true},
		{name: "TCP listener left on 127.0.0.1 (background and setsid)",
			expected: "B: ECONNREFUSED, binds both ports",
			plant: `reuse holdtcp 7788 30000 >/dev/null & setsid reuse holdtcp 7789 30000 >/dev/null &
sleep 0.3; probe connect 7788; probe connect 7789`,
			planted: "connected\nconnected\n",
			look:    `probe connect 7788; probe connect 7789; reuse bindtcp 7788; reuse bindtcp 7789; wc -l < /proc/net/tcp`,
			clean:   "error ECONNREFUSED\nerror ECONNREFUSED\nbind=OK\nbind=OK\n1\n", control: true},
		{name: "loopback counters in /proc/net/dev (kept by the network namespace, not by a process)",
			expected: "B: lo has received nothing",
			plant:    `probe connect 7796; probe connect 7797; awk '/lo:/ { print ($2 > 0) }' /proc/net/dev`,
			planted:  "error ECONNREFUSED\nerror ECONNREFUSED\n1\n",
			look:     `awk '/lo:/ { print $2, $3, $10, $11 }' /proc/net/dev`,
			clean:    "0 0 0 0\n", control: true},
		{name: "cgroup counters: A touches 60 MiB and burns 300 ms of CPU, B runs /bin/true",
			expected: "B's memory_peak and cpu_time its own",
			plant:    `probe alloc 60 && attack cpufor 300`, planted: "allocated\nused 300 ms\n",
			look:  `exec /bin/true`,
			judge: ownCounters},
		{name: "hostname and kernel keyrings: sethostname, keyctl, add_key",
			expected: "A: EPERM; B: hostname sandbox, no keys",
			plant:    `attack sys sethostname; attack sys keyctl; attack sys add_key; hostname pwned 2>/dev/null; echo hostname=$?`,
			planted:  "sethostname=EPERM\nkeyctl=EPERM\nadd_key=EPERM\nhostname=1\n",
			// /proc/key-users is not compared whole: its line for the
			// sandbox's root counts the keyrings of every sandbox that had
			// the same host ids and that the kernel has not collected yet.
			look:  `hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; wc -c < /proc/keys; grep -c '^ *65534:' /proc/key-users`,
			clean: "sandbox\nsandbox\n(none)\n0\n0\n"},
		{name: "/proc/sys, /sys and oom_score_adj written (UTS, IPC and net sysctls, lo, PID 1)",
			expected: "A: every write refused; B reads the defaults",
			plant: `for f in ` + strings.ReplaceAll(reuseKnobs, "\n", " ") + `; do echo 1 > $f && echo "WROTE $f"; done 2>/dev/null
{ echo -1000 > /proc/self/oom_score_adj; } 2>/dev/null && echo "WROTE own oom_score_adj"
ip link set lo mtu 1280 2>/dev/null && echo "WROTE mtu"; ip addr add 10.9.9.9/32 dev lo 2>/dev/null && echo "WROTE addr"; echo tried`,
			planted: "tried\n",
			look:    `cat ` + strings.ReplaceAll(reuseKnobs, "\n", " ") + ` /proc/self/oom_score_adj; ip -o addr`},
	}
}
