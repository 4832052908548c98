// Package v1alpha1 declares the Function resource that func syncs when the
// func operator is installed. Only the fields func sets or reads are here.
package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group func looks for before it syncs anything.
var GroupVersion = schema.GroupVersion{Group: "functions.dev", Version: "v1alpha1"}

// AddToScheme registers Function and FunctionList.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Function{}, &FunctionList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

type FunctionSpecRepository struct {
	URL    string `json:"url,omitempty"`
	Branch string `json:"branch,omitempty"`
	Path   string `json:"path,omitempty"`
}

type FunctionSpecRegistry struct {
	AuthSecretRef *corev1.LocalObjectReference `json:"authSecretRef,omitempty"`
}

type FunctionSpec struct {
	Repository FunctionSpecRepository `json:"repository"`
	Registry   FunctionSpecRegistry   `json:"registry,omitempty"`
}

type FunctionStatus struct {
	Name string `json:"name,omitempty"`
}

type Function struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              FunctionSpec   `json:"spec,omitempty"`
	Status            FunctionStatus `json:"status,omitempty"`
}

type FunctionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Function `json:"items"`
}

func (in *Function) DeepCopyObject() runtime.Object {
	out := *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if ref := in.Spec.Registry.AuthSecretRef; ref != nil {
		copied := *ref
		out.Spec.Registry.AuthSecretRef = &copied
	}
	return &out
}

func (in *FunctionList) DeepCopyObject() runtime.Object {
	out := *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]Function, len(in.Items))
	for i := range in.Items {
		out.Items[i] = *in.Items[i].DeepCopyObject().(*Function)
	}
	return &out
}
