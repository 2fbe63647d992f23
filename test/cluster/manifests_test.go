package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// deployDir holds the Kubernetes manifests (docs/deploy.md "Kubernetes").
const deployDir = "../../deploy/kubernetes"

// The kinds the manifests may be, each decoded into its k8s.io/api type,
// or, for the two that are not Kubernetes' own, a local struct of the
// fields they may use.
var kinds = map[string]func() any{
	"v1/ConfigMap":                                  func() any { return &corev1.ConfigMap{} },
	"v1/Service":                                    func() any { return &corev1.Service{} },
	"apps/v1/DaemonSet":                             func() any { return &appsv1.DaemonSet{} },
	"apps/v1/StatefulSet":                           func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":                 func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":        func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"monitoring.coreos.com/v1/ServiceMonitor":       func() any { return &serviceMonitor{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &kustomization{} },
}

// serviceMonitor is the part of the Prometheus operator's CRD the
// manifests may use.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kustomization is the part of kustomize's file the manifests may use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels"`
}

// adapterRules is the Prometheus adapter's rules file.
type adapterRules struct {
	Rules []struct {
		SeriesQuery string `json:"seriesQuery"`
		Resources   struct {
			Overrides map[string]struct {
				Resource string `json:"resource"`
			} `json:"overrides"`
		} `json:"resources"`
		Name struct {
			Matches string `json:"matches"`
			As      string `json:"as"`
		} `json:"name"`
		MetricsQuery string `json:"metricsQuery"`
	} `json:"rules"`
}

// decodeStrict decodes YAML into v, refusing unknown fields, duplicate
// keys and a second document.
func decodeStrict(data []byte, v any) error {
	// YAMLToJSON reads the first document only: one file, one object.
	if regexp.MustCompile(`(?m)^---(\s|$)`).Match(data) {
		return fmt.Errorf("a document separator: one object per file")
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("more than one document or trailing data")
	}
	return nil
}

// manifests are every file of deployDir, decoded, by path relative to it.
type manifests map[string]any

func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{}
	err := filepath.WalkDir(deployDir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(deployDir, path)
		if !strings.HasSuffix(rel, ".yaml") {
			return fmt.Errorf("%s: not a manifest (.yaml)", rel)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var v any = &adapterRules{}
		if rel != "prometheus-adapter/rules.yaml" {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(data, &head); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			mk, ok := kinds[head.APIVersion+"/"+head.Kind]
			if !ok {
				return fmt.Errorf("%s: no decoder for %s %s", rel, head.APIVersion, head.Kind)
			}
			v = mk()
		}
		if err := decodeStrict(data, v); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		m[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// get returns the manifest at rel as a T, failing the test if it is not.
func get[T any](t *testing.T, m manifests, rel string) T {
	t.Helper()
	v, ok := m[rel].(T)
	if !ok {
		t.Fatalf("%s: missing, or not a %T", rel, v)
	}
	return v
}

// The strict decoding refuses what a typo makes.
func TestManifestDecodingIsStrict(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		into       any
	}{
		{"an unknown field", "apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  replica: 3\n", &appsv1.StatefulSet{}},
		{"a misplaced field", "apiVersion: v1\nkind: Service\nspec:\n  ports:\n    - name: a\n      containerPort: 1\n", &corev1.Service{}},
		{"a duplicate key", "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\ndata:\n  c: d\n", &corev1.ConfigMap{}},
		{"a wrong type", "apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  minReadySeconds: soon\n", &appsv1.DaemonSet{}},
		{"two documents", "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: ConfigMap\n", &corev1.ConfigMap{}},
		{"a CRD's unknown field", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nspec:\n  endpoint: []\n", &serviceMonitor{}},
	} {
		if err := decodeStrict([]byte(tc.yaml), tc.into); err == nil {
			t.Errorf("%s: decoded", tc.name)
		}
	}
}

// Every kustomization lists every manifest beside it, and only those.
func TestKustomizations(t *testing.T) {
	m := loadManifests(t)
	for rel, v := range m {
		k, ok := v.(*kustomization)
		if !ok {
			continue
		}
		dir := filepath.Dir(rel)
		var listed, beside []string
		for _, r := range k.Resources {
			if _, err := os.Stat(filepath.Join(deployDir, dir, r)); err != nil {
				t.Errorf("%s: resource %s: %v", rel, r, err)
			}
			if !strings.HasPrefix(r, "..") {
				listed = append(listed, r)
			}
		}
		entries, _ := os.ReadDir(filepath.Join(deployDir, dir))
		for _, e := range entries {
			if !e.IsDir() && e.Name() != "kustomization.yaml" {
				beside = append(beside, e.Name())
			}
		}
		sort.Strings(listed)
		if strings.Join(listed, " ") != strings.Join(beside, " ") {
			t.Errorf("%s lists %v; beside it: %v", rel, listed, beside)
		}
		if strings.HasPrefix(dir, "overlays/") && !contains(k.Resources, "../../base") {
			t.Errorf("%s: an overlay without ../../base", rel)
		}
	}
	for _, want := range []string{"base/kustomization.yaml", "overlays/node-local/kustomization.yaml", "overlays/service/kustomization.yaml"} {
		get[*kustomization](t, m, want)
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// imageRef is the daemon's image as the Makefile names it (make image-ref).
func imageRef(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("make", "-s", "--no-print-directory", "-C", "../..", "image-ref").Output()
	if err != nil {
		t.Fatalf("make image-ref: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// serveFlags are the flags `sandboxd serve --help` lists.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(sandboxdBin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("serve --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, f := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[f[1]] = true
	}
	if len(flags) < 20 || !flags["config"] {
		t.Fatalf("serve --help lists %d flags: not what it should be\n%s", len(flags), out)
	}
	return flags
}
