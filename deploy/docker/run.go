package docker

// RunFlags are the `docker run` flags of the smallest set of privileges
// under which sandboxd keeps every guarantee of SECURITY.md, found on a
// cgroup v1 (hybrid) host by removing each from a working container in
// turn; docs/deploy.md gives them with the reason for each, and `make
// test-container` runs the image with exactly these. The seccomp profile's
// path is relative to the checkout.
var RunFlags = []string{
	// The container's own cgroup as the root of its cgroup namespace:
	// the entrypoint remounts it read-write, and sandboxd nests its
	// sandboxes below, seeing nothing of the host's tree.
	"--cgroupns=private",
	"--cap-drop=ALL",
	"--cap-add=SYS_ADMIN",
	"--cap-add=SETUID",
	"--cap-add=SETGID",
	"--cap-add=CHOWN",
	"--cap-add=DAC_OVERRIDE",
	"--cap-add=FOWNER",
	"--cap-add=SYS_CHROOT",
	"--cap-add=NET_ADMIN",
	"--cap-add=SYS_PTRACE",
	// Moby's default profile plus keyctl and pivot_root.
	"--security-opt=seccomp=deploy/docker/seccomp.json",
	// Docker's AppArmor profile denies every mount (a no-op where
	// AppArmor is off, as on the test host).
	"--security-opt=apparmor=unconfined",
	// No masked or read-only paths in /proc and /sys: a sandbox's user
	// namespace may then mount its own, which sandboxd masks again.
	"--security-opt=systempaths=unconfined",
}
