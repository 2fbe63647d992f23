package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Cluster is the [cluster] section: this daemon among its peers, for
// session forwarding (docs/deploy.md "Kubernetes"). Without pod_name,
// session ids name no pod and nothing is forwarded.
type Cluster struct {
	// PodName names this daemon: it ends every session id it makes. In
	// Kubernetes, the pod's name (--pod-name "$(POD_NAME)").
	PodName string `toml:"pod_name"`
	// PeerURLTemplate is a peer's base URL with "{pod}" for its name,
	// e.g. "http://{pod}.sandboxd.default.svc.cluster.local:8080" over
	// the headless Service.
	PeerURLTemplate string `toml:"peer_url_template"`
	// Peers maps pod names to base URLs, ahead of the template (tests,
	// or a fixed set of hosts).
	Peers map[string]string `toml:"peers"`
	// PeerCAFile is a PEM bundle of the CAs that sign the peers' TLS
	// certificates (https:// peer URLs); empty: the system's roots.
	PeerCAFile string `toml:"peer_ca_file"`
}

// podNameRE is a DNS-1123 subdomain's alphabet: a pod's name is one, and
// the name goes into URLs and session ids.
// Compiled on first use: a regexp built at package init costs every
// start of the binary (libcontainer's init among them) its compile.
var podNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)
})

// resolveCluster checks [cluster].
func (c Config) resolveCluster() []error {
	var errs []error
	cl := c.Cluster
	if cl.PodName != "" && !podNameRE().MatchString(cl.PodName) {
		errs = append(errs, fmt.Errorf("[cluster] pod_name %q: expected a DNS name (a-z, 0-9, '-', '.')", cl.PodName))
	}
	if cl.PodName == "" && (cl.PeerURLTemplate != "" || len(cl.Peers) > 0) {
		errs = append(errs, fmt.Errorf("[cluster] peers or peer_url_template need pod_name"))
	}
	if t := cl.PeerURLTemplate; t != "" {
		if !strings.Contains(t, "{pod}") {
			errs = append(errs, fmt.Errorf("[cluster] peer_url_template %q: has no {pod}", t))
		} else if _, err := peerURL(strings.ReplaceAll(t, "{pod}", "pod")); err != nil {
			errs = append(errs, fmt.Errorf("[cluster] peer_url_template: %w", err))
		}
	}
	if cl.PeerCAFile != "" && cl.PodName == "" {
		errs = append(errs, fmt.Errorf("[cluster] peer_ca_file needs pod_name"))
	}
	for pod, u := range cl.Peers {
		if !podNameRE().MatchString(pod) {
			errs = append(errs, fmt.Errorf("[cluster] peers: %q is not a pod name", pod))
		}
		if _, err := peerURL(u); err != nil {
			errs = append(errs, fmt.Errorf("[cluster] peers %q: %w", pod, err))
		}
	}
	return errs
}

// PeerURL returns the base URL of the peer named pod: its entry in peers,
// else the template filled in; false for this daemon, a name that is not
// a pod's, or no way to reach it.
func (cl Cluster) PeerURL(pod string) (*url.URL, bool) {
	if pod == "" || pod == cl.PodName || !podNameRE().MatchString(pod) {
		return nil, false
	}
	raw, ok := cl.Peers[pod]
	if !ok {
		if cl.PeerURLTemplate == "" {
			return nil, false
		}
		raw = strings.ReplaceAll(cl.PeerURLTemplate, "{pod}", pod)
	}
	u, err := peerURL(raw)
	return u, err == nil
}

// peerURL parses an http(s) base URL without a path beyond "/".
func peerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: expected an http:// or https:// URL", raw)
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return nil, fmt.Errorf("%q: expected scheme://host[:port] only", raw)
	}
	return u, nil
}
