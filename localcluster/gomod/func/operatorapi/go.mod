// The Function API of func's operator, as knative.dev/func v0.50.1 uses it.
// func requires github.com/functions-dev/func-operator v0.2.1, which the Go
// module proxy does not serve; func only talks to that API when the cluster
// has the operator's CRD, which the local cluster never installs. Written
// from func's calls (pkg/operator), not copied from the operator.
module github.com/functions-dev/func-operator

go 1.25.0
