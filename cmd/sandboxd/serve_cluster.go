package main

import "github.com/sandboxd/sandboxd/config"

// clusterFlags are the [cluster] keys a pod's command line sets: its own
// name, and how it reaches its peers, which names its namespace (the
// downward API gives both to the command line, not to a shared config
// file). peers is in the file only.
func clusterFlags() []configFlag {
	return []configFlag{
		{"pod-name", "this daemon's name among its peers, ending its session ids (Kubernetes: the pod's name)",
			str(func(c *config.Config) *string { return &c.Cluster.PodName })},
		{"peer-url-template", "a peer's base URL with {pod} for its name, e.g. http://{pod}.sandboxd.NAMESPACE.svc.cluster.local:8080",
			str(func(c *config.Config) *string { return &c.Cluster.PeerURLTemplate })},
		{"peer-ca-file", "PEM CAs of the peers' TLS certificates (default: the system's roots)",
			str(func(c *config.Config) *string { return &c.Cluster.PeerCAFile })},
	}
}

// testsetsFlags are the [testsets] keys.
func testsetsFlags() []configFlag {
	return []configFlag{
		{"testsets-dir", "where stored test sets are kept (default: STATE_DIR/testsets)", str(func(c *config.Config) *string { return &c.Testsets.Dir })},
		{"testsets-max-bytes", "one test set's files, unpacked (413 beyond)", str(func(c *config.Config) *string { return &c.Testsets.MaxBytes })},
		{"testsets-max-tests", "one test set's tests (413 beyond; at most --max-tests)", integer(func(c *config.Config) *int { return &c.Testsets.MaxTests })},
		{"testsets-max-owner-bytes", "one caller's test sets together (507 beyond)", str(func(c *config.Config) *string { return &c.Testsets.MaxOwnerBytes })},
		{"testsets-max-total-bytes", "all the daemon's test sets (507 beyond)", str(func(c *config.Config) *string { return &c.Testsets.MaxTotalBytes })},
	}
}

// flagSections are the config sections of flags whose keys are not at
// the top level.
var flagSections = map[string]string{"pod-name": "[cluster] ", "peer-url-template": "[cluster] ", "peer-ca-file": "[cluster] ",
	"testsets-dir": "[testsets] ", "testsets-max-bytes": "[testsets] ", "testsets-max-tests": "[testsets] ",
	"testsets-max-owner-bytes": "[testsets] ", "testsets-max-total-bytes": "[testsets] "}
