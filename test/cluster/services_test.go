package cluster_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The service overlay's objects agree with its StatefulSet: the Services
// and the PodDisruptionBudget select its pods and name its ports; the
// headless Service is its serviceName and the peers' URLs go through it;
// the ServiceMonitor scrapes the headless Service's metrics port.
func TestServiceOverlay(t *testing.T) {
	m := loadManifests(t)
	ss := get[*appsv1.StatefulSet](t, m, "overlays/service/statefulset.yaml")
	pods := ss.Spec.Template.Labels
	p := &pod{c: ss.Spec.Template.Spec.Containers[0]}
	api := get[*corev1.Service](t, m, "overlays/service/service.yaml")
	peers := get[*corev1.Service](t, m, "overlays/service/service-peers.yaml")
	for _, svc := range []*corev1.Service{api, peers} {
		if !selects(svc.Spec.Selector, pods) {
			t.Errorf("Service %s selects %v, not the pods %v", svc.Name, svc.Spec.Selector, pods)
		}
		for _, sp := range svc.Spec.Ports {
			if _, ok := p.port(sp.TargetPort.String()); !ok {
				t.Errorf("Service %s port %s: target %s is no container port", svc.Name, sp.Name, sp.TargetPort.String())
			}
		}
	}
	if api.Spec.Type != corev1.ServiceTypeClusterIP || len(api.Spec.Ports) != 1 || api.Spec.Ports[0].TargetPort.String() != "https" {
		t.Errorf("Service %s: want ClusterIP to https only: %+v", api.Name, api.Spec)
	}
	if peers.Spec.ClusterIP != corev1.ClusterIPNone || ss.Spec.ServiceName != peers.Name || !peers.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: want the StatefulSet's headless Service (%s), publishing not-ready pods", peers.Name, ss.Spec.ServiceName)
	}
	https, _ := p.port("https")
	tmpl, _ := flagValue(p.c.Args, "peer-url-template")
	if !strings.HasPrefix(tmpl, "https://{pod}."+peers.Name+".$(POD_NAMESPACE).svc.") || !strings.HasSuffix(tmpl, ":"+strconv.Itoa(int(https))) {
		t.Errorf("--peer-url-template=%s: not the pods' names under %s, port %d", tmpl, peers.Name, https)
	}
	pdb := get[*policyv1.PodDisruptionBudget](t, m, "overlays/service/pdb.yaml")
	if !selects(pdb.Spec.Selector.MatchLabels, pods) || pdb.Spec.MaxUnavailable == nil {
		t.Errorf("PodDisruptionBudget: selects %v, maxUnavailable %v", pdb.Spec.Selector.MatchLabels, pdb.Spec.MaxUnavailable)
	}
	sm := get[*serviceMonitor](t, m, "overlays/service/servicemonitor.yaml")
	if !selects(sm.Spec.Selector.MatchLabels, peers.Labels) || selects(sm.Spec.Selector.MatchLabels, api.Labels) {
		t.Errorf("ServiceMonitor selects %v: want the headless Service only (each pod once)", sm.Spec.Selector.MatchLabels)
	}
	for _, e := range sm.Spec.Endpoints {
		found := false
		for _, sp := range peers.Spec.Ports {
			found = found || (sp.Name == e.Port && sp.TargetPort.String() == "metrics")
		}
		if !found || e.Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoint %+v: not the metrics port's /metrics", e)
		}
	}
}

// The HorizontalPodAutoscaler scales the StatefulSet on a per-pod metric
// that the Prometheus adapter's rule makes of a series a daemon exports.
func TestAutoscaling(t *testing.T) {
	m := loadManifests(t)
	hpa := get[*autoscalingv2.HorizontalPodAutoscaler](t, m, "overlays/service/hpa.yaml")
	ss := get[*appsv1.StatefulSet](t, m, "overlays/service/statefulset.yaml")
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "StatefulSet" || ref.Name != ss.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("scales %+v, not the StatefulSet %s", ref, ss.Name)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Pods == nil {
		t.Fatalf("want one Pods metric: %+v", hpa.Spec.Metrics)
	}
	metric := hpa.Spec.Metrics[0].Pods.Metric.Name
	rules := get[*adapterRules](t, m, "prometheus-adapter/rules.yaml")
	found := false
	for _, r := range rules.Rules {
		found = found || (r.Name.As == metric && strings.HasPrefix(r.SeriesQuery, metric+"{") &&
			r.Resources.Overrides["pod"].Resource == "pod" && r.Resources.Overrides["namespace"].Resource == "namespace")
	}
	if !found {
		t.Errorf("no adapter rule makes %s per pod", metric)
	}
	ops := fmt.Sprintf("127.0.0.1:%d", testdaemon.FreePort(t))
	testdaemon.Start(t, "--metrics-listen", "tcp://"+ops)
	r := call(t, "http://"+ops, http.MethodGet, "/metrics", "", "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "\n# TYPE "+metric+" gauge\n") {
		t.Errorf("the daemon exports no gauge %s: %d\n%s", metric, r.status, r.body)
	}
}
