package cluster_test

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/internal/units"
)

// The DaemonSet's and the StatefulSet's pods: the image `make image`
// names; flags `sandboxd serve` has; a configuration (the ConfigMap's file
// and the flags together) the daemon accepts; not privileged; probes on
// the operations port; a termination grace that covers grace_period;
// writable mounts where the daemon writes; resources that fit the
// configuration.
func TestWorkloads(t *testing.T) {
	m := loadManifests(t)
	w := workloadCheck{image: imageRef(t), flags: serveFlags(t), cm: get[*corev1.ConfigMap](t, m, "base/configmap.yaml")}
	ds := get[*appsv1.DaemonSet](t, m, "overlays/node-local/daemonset.yaml")
	ss := get[*appsv1.StatefulSet](t, m, "overlays/service/statefulset.yaml")
	for _, tc := range []struct {
		name     string
		selector map[string]string
		tmpl     corev1.PodTemplateSpec
	}{
		{"daemonset", ds.Spec.Selector.MatchLabels, ds.Spec.Template},
		{"statefulset", ss.Spec.Selector.MatchLabels, ss.Spec.Template},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !selects(tc.selector, tc.tmpl.Labels) {
				t.Errorf("selector %v does not select the pods %v", tc.selector, tc.tmpl.Labels)
			}
			w.check(t, tc.tmpl.Spec)
		})
	}
}

// selects reports whether a selector's labels are all among labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

type workloadCheck struct {
	image string
	flags map[string]bool
	cm    *corev1.ConfigMap
}

// pod is one pod template's daemon container, its args as the kubelet
// expands them, and its configuration file as the ConfigMap gives it.
type pod struct {
	spec    corev1.PodSpec
	c       corev1.Container
	args    []string
	cfgPath string // the file on this host
	cfg     config.Config
}

func (w workloadCheck) check(t *testing.T, spec corev1.PodSpec) {
	var p *pod
	for _, c := range spec.Containers {
		if c.Name == "sandboxd" {
			p = &pod{spec: spec, c: c, args: kubeletExpand(c.Args, c.Env)}
		}
	}
	if p == nil || len(spec.Containers) != 1 {
		t.Fatalf("want one container, sandboxd: %d", len(spec.Containers))
	}
	if p.c.Image != w.image {
		t.Errorf("image %q; make image-ref names %q", p.c.Image, w.image)
	}
	w.checkArgs(t, p)
	checkSecurity(t, p)
	checkProbesAndPorts(t, p)
	checkGrace(t, p)
	checkMounts(t, p)
	checkSizing(t, p)
}

// kubeletExpand replaces $(VAR) in args with the values of env, as the
// kubelet does; the downward API's pod name and namespace get examples.
func kubeletExpand(args []string, env []corev1.EnvVar) []string {
	vals := map[string]string{}
	for _, e := range env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			v = map[string]string{"metadata.name": "sandboxd-0", "metadata.namespace": "default"}[e.ValueFrom.FieldRef.FieldPath]
		}
		vals[e.Name] = v
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(a, func(s string) string {
			if v, ok := vals[s[2:len(s)-1]]; ok {
				return v
			}
			return s
		})
	}
	return out
}

// flagValue returns the last value of --name in args.
func flagValue(args []string, name string) (string, bool) {
	v, ok := "", false
	for _, a := range args {
		if s, found := strings.CutPrefix(a, "--"+name+"="); found {
			v, ok = s, true
		}
	}
	return v, ok
}

// checkArgs: `serve`, every flag is one of serve's, the configuration
// file is the ConfigMap's, and the daemon accepts the whole
// (--check-config), with the file where the pod mounts it.
func (w workloadCheck) checkArgs(t *testing.T, p *pod) {
	if len(p.args) == 0 || p.args[0] != "serve" {
		t.Fatalf("args %q: want serve first", p.args)
	}
	for _, a := range p.args[1:] {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !strings.Contains(a, "=") || !w.flags[name] {
			t.Errorf("arg %q: not --FLAG=VALUE of a flag `sandboxd serve --help` lists", a)
		}
	}
	cfgIn, ok := flagValue(p.args, "config")
	if !ok {
		t.Fatal("no --config")
	}
	data, ok := w.configMapFile(p, cfgIn)
	if !ok {
		t.Fatalf("--config=%s: not a file of the ConfigMap %s as the pod mounts it", cfgIn, w.cm.Name)
	}
	p.cfgPath = writeFile(t, "sandboxd.toml", data)
	var err error
	if p.cfg, err = config.Load(p.cfgPath); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--check-config"}, p.args[1:]...)
	for i, a := range args {
		if a == "--config="+cfgIn {
			args[i] = "--config=" + p.cfgPath
		}
	}
	if out, err := exec.Command(sandboxdBin, args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "configuration ok") {
		t.Errorf("sandboxd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// configMapFile returns the ConfigMap's key that the pod shows at path.
func (w workloadCheck) configMapFile(p *pod, path string) (string, bool) {
	for _, vm := range p.c.VolumeMounts {
		vol := volume(p.spec, vm.Name)
		if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != w.cm.Name {
			continue
		}
		key := ""
		switch {
		case vm.SubPath != "" && vm.MountPath == path:
			key = vm.SubPath
		case vm.SubPath == "" && filepath.Dir(path) == vm.MountPath:
			key = filepath.Base(path)
		}
		if data, ok := w.cm.Data[key]; ok && key != "" {
			return data, true
		}
	}
	return "", false
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// checkSecurity: no privileged container, no host namespaces, a
// read-only root; and what the API server would refuse is not there
// (allowPrivilegeEscalation false beside CAP_SYS_ADMIN).
func checkSecurity(t *testing.T, p *pod) {
	sc := p.c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("no securityContext with capabilities")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged")
	}
	if p.spec.HostPID || p.spec.HostNetwork || p.spec.HostIPC {
		t.Error("a host namespace (hostPID, hostNetwork, hostIPC)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the root filesystem is writable")
	}
	if len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("drops %v, want ALL (and adds back what it needs)", sc.Capabilities.Drop)
	}
	for _, c := range sc.Capabilities.Add {
		if c == "SYS_ADMIN" && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation false with CAP_SYS_ADMIN: the API server refuses it")
		}
	}
	if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it has no use for")
	}
}

// port returns the container port named name.
func (p *pod) port(name string) (int32, bool) {
	for _, cp := range p.c.Ports {
		if cp.Name == name {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// checkProbesAndPorts: liveness /v1/healthz and readiness /v1/readyz on
// the port metrics_listen opens; the "https" port is the TCP listener's.
func checkProbesAndPorts(t *testing.T, p *pod) {
	metrics, ok := p.port("metrics")
	u, err := url.Parse(p.cfg.MetricsListen)
	if !ok || err != nil || u.Port() != strconv.Itoa(int(metrics)) {
		t.Errorf("port metrics %d; metrics_listen %q", metrics, p.cfg.MetricsListen)
	}
	for _, pr := range []struct {
		probe *corev1.Probe
		path  string
	}{{p.c.LivenessProbe, "/v1/healthz"}, {p.c.ReadinessProbe, "/v1/readyz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil || pr.probe.HTTPGet.Path != pr.path || pr.probe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("want a probe of %s on port metrics: %+v", pr.path, pr.probe)
		}
	}
	https, hasHTTPS := p.port("https")
	var tcp []string
	for _, a := range p.args {
		if l, ok := strings.CutPrefix(a, "--listen=tcp://"); ok {
			tcp = append(tcp, l)
		}
	}
	switch {
	case hasHTTPS && (len(tcp) != 1 || !strings.HasSuffix(tcp[0], ":"+strconv.Itoa(int(https)))):
		t.Errorf("port https %d; TCP listeners %v", https, tcp)
	case !hasHTTPS && len(tcp) > 0:
		t.Errorf("TCP listeners %v without a port https", tcp)
	}
}

// checkGrace: the kubelet waits for the preStop sleep, grace_period and
// the daemon's 10 s to kill what remains and clean up before SIGKILL.
func checkGrace(t *testing.T, p *pod) {
	grace, err := units.ParseDuration(p.cfg.GracePeriod)
	if err != nil {
		t.Fatal(err)
	}
	var sleep time.Duration
	if ls := p.c.Lifecycle; ls != nil && ls.PreStop != nil && ls.PreStop.Sleep != nil {
		sleep = time.Duration(ls.PreStop.Sleep.Seconds) * time.Second
	}
	want := int64((sleep + grace + 10*time.Second) / time.Second)
	got := int64(-1) // unset: the kubelet's 30 s
	if g := p.spec.TerminationGracePeriodSeconds; g != nil {
		got = *g
	}
	if got != want {
		t.Errorf("terminationGracePeriodSeconds %d, want %d (preStop %v + grace_period %v + 10 s)", got, want, sleep, grace)
	}
}

// checkMounts: the root is read-only, so every place the daemon writes
// (the socket's directory, state_dir, run_dir, /tmp, the user-namespace
// lock) and every file the args name is on a volume.
func checkMounts(t *testing.T, p *pod) {
	paths := []string{filepath.Dir(p.cfg.Socket), p.cfg.StateDir, p.cfg.RunDir, "/tmp", "/run/sandboxd-userns.lock"}
	for _, a := range p.args {
		if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(v, "/") {
			paths = append(paths, v)
		}
	}
	for _, path := range paths {
		found := false
		for _, vm := range p.c.VolumeMounts {
			if path == vm.MountPath || strings.HasPrefix(path, vm.MountPath+"/") {
				found = volume(p.spec, vm.Name) != nil
			}
		}
		if !found {
			t.Errorf("%s is on no volume of the pod", path)
		}
	}
}

// checkSizing: a CPU requested per running sandbox, and memory for the
// sandboxes at their maximum, the sessions, the warm pool and the daemon.
func checkSizing(t *testing.T, p *pod) {
	r, err := p.cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	cpu := p.c.Resources.Requests[corev1.ResourceCPU]
	if cpu.MilliValue() < int64(r.Concurrency)*1000 {
		t.Errorf("requests %s CPUs for concurrency %d", cpu.String(), r.Concurrency)
	}
	need := int64(r.Concurrency)*r.Maximums.MemoryBytes + r.SessionMemory + r.PoolMemory + 512<<20
	limit, ok := p.c.Resources.Limits[corev1.ResourceMemory]
	if !ok || limit.Value() < need {
		t.Errorf("memory limit %s; the configuration needs %s", limit.String(), resource.NewQuantity(need, resource.BinarySI))
	}
	if req := p.c.Resources.Requests[corev1.ResourceMemory]; req.Cmp(limit) != 0 {
		t.Errorf("memory request %s below its limit %s: the node may not have it", req.String(), limit.String())
	}
	_ = os.Remove(p.cfgPath)
}
