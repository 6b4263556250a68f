//go:build tools

// Package tools pins the Kubernetes node commands that build.sh compiles from k8s.io/kubernetes.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
