// Command k8s-validate checks Kubernetes manifests offline, against the API's own Go types.
//
// Each YAML document is decoded strictly into the typed struct of its apiVersion and kind (an unknown or
// misspelt field, a duplicate key or a wrongly typed value is an error), then checked for the fields the API
// server requires and for references between the documents (a Service's selector, an HPA's target, a
// ConfigMap named in envFrom). No cluster is needed.
//
// Usage: k8s-validate FILE...
// Prints one JSON line per valid document (file, index, apiVersion, kind, namespace, name) on stdout and
// one line per problem on stderr; exits 1 when there is any problem, 2 on a usage error.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// object is a decoded document: its metadata plus the typed value for the kind-specific checks.
type object struct {
	file  string
	index int
	gvk   string
	meta  *metav1.ObjectMeta
	value any
}

// kinds are the types the manifests may use; anything else is refused rather than passed unchecked.
var kinds = map[string]func() (any, *metav1.ObjectMeta){
	"apps/v1/Deployment": func() (any, *metav1.ObjectMeta) {
		o := &appsv1.Deployment{}
		return o, &o.ObjectMeta
	},
	"v1/Service": func() (any, *metav1.ObjectMeta) {
		o := &corev1.Service{}
		return o, &o.ObjectMeta
	},
	"v1/ConfigMap": func() (any, *metav1.ObjectMeta) {
		o := &corev1.ConfigMap{}
		return o, &o.ObjectMeta
	},
	"v1/Secret": func() (any, *metav1.ObjectMeta) {
		o := &corev1.Secret{}
		return o, &o.ObjectMeta
	},
	"v1/Namespace": func() (any, *metav1.ObjectMeta) {
		o := &corev1.Namespace{}
		return o, &o.ObjectMeta
	},
	"autoscaling/v2/HorizontalPodAutoscaler": func() (any, *metav1.ObjectMeta) {
		o := &autoscalingv2.HorizontalPodAutoscaler{}
		return o, &o.ObjectMeta
	},
	"batch/v1/CronJob": func() (any, *metav1.ObjectMeta) {
		o := &batchv1.CronJob{}
		return o, &o.ObjectMeta
	},
}

type problems struct{ lines []string }

func (p *problems) add(o *object, format string, args ...any) {
	where := fmt.Sprintf("%s#%d", o.file, o.index)
	if o.meta != nil && o.meta.Name != "" {
		where += fmt.Sprintf(" (%s %s)", o.gvk, o.meta.Name)
	}
	p.lines = append(p.lines, where+": "+fmt.Sprintf(format, args...))
}

func (p *problems) addAll(o *object, path string, messages []string) {
	for _, m := range messages {
		p.add(o, "%s: %s", path, m)
	}
}

func (p *problems) addList(o *object, errs field.ErrorList) {
	for _, e := range errs {
		p.add(o, "%s", e.Error())
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: k8s-validate FILE...")
		os.Exit(2)
	}
	var p problems
	var objects []*object
	for _, name := range os.Args[1:] {
		objects = append(objects, decodeFile(name, &p)...)
	}
	for _, o := range objects {
		check(o, objects, &p)
	}
	if len(p.lines) > 0 {
		for _, line := range p.lines {
			fmt.Fprintln(os.Stderr, line)
		}
		os.Exit(1)
	}
	out := json.NewEncoder(os.Stdout)
	for _, o := range objects {
		apiVersion, kind := splitGVK(o.gvk)
		_ = out.Encode(map[string]any{"file": o.file, "index": o.index, "apiVersion": apiVersion, "kind": kind,
			"namespace": o.meta.Namespace, "name": o.meta.Name})
	}
}

func splitGVK(gvk string) (string, string) {
	i := strings.LastIndex(gvk, "/")
	return gvk[:i], gvk[i+1:]
}

// decodeFile splits a file into its YAML documents and decodes each strictly into its type.
func decodeFile(name string, p *problems) []*object {
	f, err := os.Open(name)
	if err != nil {
		p.lines = append(p.lines, fmt.Sprintf("%s: %v", name, err))
		return nil
	}
	defer f.Close()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var out []*object
	for index := 0; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		o := &object{file: name, index: index}
		if err != nil {
			p.add(o, "cannot split the documents: %v", err)
			return out
		}
		var head map[string]any
		if err := yaml.Unmarshal(doc, &head); err != nil {
			p.add(o, "not YAML: %v", err)
			continue
		}
		if head == nil { // only comments, or an empty document between two separators
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil || tm.APIVersion == "" || tm.Kind == "" {
			p.add(o, "apiVersion and kind are required")
			continue
		}
		o.gvk = tm.APIVersion + "/" + tm.Kind
		make, known := kinds[o.gvk]
		if !known {
			p.add(o, "%s is not a kind this checker knows (it knows %s)", o.gvk, knownKinds())
			continue
		}
		o.value, o.meta = make()
		// UnmarshalStrict refuses unknown fields and duplicate keys: a misspelt field would otherwise be
		// dropped silently by the API server's client, and the setting lost.
		if err := yaml.UnmarshalStrict(doc, o.value); err != nil {
			p.add(o, "does not decode strictly into %s: %v", o.gvk, err)
			continue
		}
		out = append(out, o)
	}
}

func knownKinds() string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func check(o *object, all []*object, p *problems) {
	checkMeta(o, p)
	switch v := o.value.(type) {
	case *appsv1.Deployment:
		checkDeployment(o, v, all, p)
	case *corev1.Service:
		checkService(o, v, all, p)
	case *autoscalingv2.HorizontalPodAutoscaler:
		checkHPA(o, v, all, p)
	case *corev1.ConfigMap:
		for key := range v.Data {
			p.addAll(o, "data."+key, validation.IsConfigMapKey(key))
		}
	case *corev1.Secret:
		for key := range v.Data {
			p.addAll(o, "data."+key, validation.IsConfigMapKey(key))
		}
		for key := range v.StringData {
			p.addAll(o, "stringData."+key, validation.IsConfigMapKey(key))
		}
	case *batchv1.CronJob:
		if strings.TrimSpace(v.Spec.Schedule) == "" {
			p.add(o, "spec.schedule is required")
		}
		restart := v.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy
		if restart != corev1.RestartPolicyNever && restart != corev1.RestartPolicyOnFailure {
			p.add(o, "a Job's restartPolicy must be Never or OnFailure, not %q", restart)
		}
		checkPodSpec(o, "spec.jobTemplate.spec.template.spec", &v.Spec.JobTemplate.Spec.Template.Spec, o.meta.Namespace, all, p)
	}
}

func checkMeta(o *object, p *problems) {
	m := o.meta
	if m.Name == "" {
		p.add(o, "metadata.name is required")
		return
	}
	if o.gvk == "v1/Service" || o.gvk == "v1/Namespace" {
		p.addAll(o, "metadata.name", validation.IsDNS1035Label(m.Name))
	} else {
		p.addAll(o, "metadata.name", validation.IsDNS1123Subdomain(m.Name))
	}
	if m.Namespace != "" {
		p.addAll(o, "metadata.namespace", validation.IsDNS1123Label(m.Namespace))
	}
	p.addList(o, metavalidation.ValidateLabels(m.Labels, field.NewPath("metadata", "labels")))
}

func checkDeployment(o *object, d *appsv1.Deployment, all []*object, p *problems) {
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 0 {
		p.add(o, "spec.replicas must not be negative")
	}
	sel := d.Spec.Selector
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		p.add(o, "spec.selector is required and must not be empty")
	} else if s, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		p.add(o, "spec.selector: %v", err)
	} else if !s.Matches(labels.Set(d.Spec.Template.Labels)) {
		p.add(o, "spec.selector does not match spec.template.metadata.labels")
	}
	p.addList(o, metavalidation.ValidateLabels(d.Spec.Template.Labels, field.NewPath("spec", "template", "metadata", "labels")))
	checkPodSpec(o, "spec.template.spec", &d.Spec.Template.Spec, o.meta.Namespace, all, p)
}

func checkPodSpec(o *object, path string, spec *corev1.PodSpec, namespace string, all []*object, p *problems) {
	if len(spec.Containers) == 0 {
		p.add(o, "%s.containers: at least one container is required", path)
	}
	volumes := map[string]bool{}
	for i, v := range spec.Volumes {
		vp := fmt.Sprintf("%s.volumes[%d]", path, i)
		p.addAll(o, vp+".name", validation.IsDNS1123Label(v.Name))
		if volumes[v.Name] {
			p.add(o, "%s.name: duplicate volume %q", vp, v.Name)
		}
		volumes[v.Name] = true
		if countSources(v.VolumeSource) != 1 {
			p.add(o, "%s: exactly one volume source is required", vp)
		}
		if v.Projected != nil {
			for j, s := range v.Projected.Sources {
				if s.Secret != nil {
					sp := fmt.Sprintf("%s.projected.sources[%d].secret", vp, j)
					if s.Secret.Name == "" {
						p.add(o, "%s.name is required", sp)
					}
					for k, item := range s.Secret.Items {
						if item.Key == "" || item.Path == "" || strings.HasPrefix(item.Path, "/") || strings.Contains(item.Path, "..") {
							p.add(o, "%s.items[%d]: key and a relative path without '..' are required", sp, k)
						}
					}
				}
			}
		}
	}
	names := map[string]bool{}
	for i, c := range spec.Containers {
		cp := fmt.Sprintf("%s.containers[%d]", path, i)
		p.addAll(o, cp+".name", validation.IsDNS1123Label(c.Name))
		if names[c.Name] {
			p.add(o, "%s.name: duplicate container %q", cp, c.Name)
		}
		names[c.Name] = true
		if strings.TrimSpace(c.Image) == "" {
			p.add(o, "%s.image is required", cp)
		}
		for j, port := range c.Ports {
			p.addAll(o, fmt.Sprintf("%s.ports[%d].containerPort", cp, j), validation.IsValidPortNum(int(port.ContainerPort)))
			if port.Name != "" {
				p.addAll(o, fmt.Sprintf("%s.ports[%d].name", cp, j), validation.IsValidPortName(port.Name))
			}
		}
		env := map[string]bool{}
		for j, e := range c.Env {
			ep := fmt.Sprintf("%s.env[%d]", cp, j)
			p.addAll(o, ep+".name", validation.IsEnvVarName(e.Name))
			if env[e.Name] {
				p.add(o, "%s.name: %q is set twice", ep, e.Name)
			}
			env[e.Name] = true
			if e.Value != "" && e.ValueFrom != nil {
				p.add(o, "%s: value and valueFrom are exclusive", ep)
			}
		}
		for j, from := range c.EnvFrom {
			fp := fmt.Sprintf("%s.envFrom[%d]", cp, j)
			switch {
			case from.ConfigMapRef != nil && from.SecretRef == nil:
				if !(from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional) &&
					find(all, "v1/ConfigMap", namespace, from.ConfigMapRef.Name) == nil {
					p.add(o, "%s.configMapRef: no ConfigMap %q in namespace %q among the manifests", fp, from.ConfigMapRef.Name, namespace)
				}
			case from.SecretRef != nil && from.ConfigMapRef == nil:
				if from.SecretRef.Name == "" {
					p.add(o, "%s.secretRef.name is required", fp)
				}
			default:
				p.add(o, "%s: exactly one of configMapRef and secretRef is required", fp)
			}
		}
		for j, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				p.add(o, "%s.volumeMounts[%d]: no volume %q in the pod", cp, j, m.Name)
			}
			if !strings.HasPrefix(m.MountPath, "/") {
				p.add(o, "%s.volumeMounts[%d].mountPath must be absolute", cp, j)
			}
		}
		for name, probe := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
			if probe != nil && probe.Exec == nil && probe.HTTPGet == nil && probe.TCPSocket == nil && probe.GRPC == nil {
				p.add(o, "%s.%s: a handler (exec, httpGet, tcpSocket or grpc) is required", cp, name)
			}
			if probe != nil && probe.HTTPGet != nil && !portOf(c, probe.HTTPGet.Port) {
				p.add(o, "%s.%s.httpGet.port %s is not a port of the container", cp, name, probe.HTTPGet.Port.String())
			}
			if probe != nil && probe.TCPSocket != nil && !portOf(c, probe.TCPSocket.Port) {
				p.add(o, "%s.%s.tcpSocket.port %s is not a port of the container", cp, name, probe.TCPSocket.Port.String())
			}
			if probe != nil && probe.Exec != nil && len(probe.Exec.Command) == 0 {
				p.add(o, "%s.%s.exec.command must not be empty", cp, name)
			}
		}
		for res, limit := range c.Resources.Limits {
			if req, ok := c.Resources.Requests[res]; ok && req.Cmp(limit) > 0 {
				p.add(o, "%s.resources: the %s request %s exceeds the limit %s", cp, res, req.String(), limit.String())
			}
		}
	}
}

// countSources counts the volume sources set, by their JSON form: the struct has one pointer per source.
func countSources(s corev1.VolumeSource) int {
	raw, _ := json.Marshal(s)
	var set map[string]json.RawMessage
	_ = json.Unmarshal(raw, &set)
	return len(set)
}

func portOf(c corev1.Container, port intstr.IntOrString) bool {
	for _, p := range c.Ports {
		if (port.Type == intstr.Int && p.ContainerPort == port.IntVal) || (port.Type == intstr.String && p.Name == port.StrVal) {
			return true
		}
	}
	return false
}

func find(all []*object, gvk, namespace, name string) *object {
	for _, o := range all {
		if o.gvk == gvk && o.meta.Namespace == namespace && o.meta.Name == name {
			return o
		}
	}
	return nil
}

func checkService(o *object, s *corev1.Service, all []*object, p *problems) {
	if len(s.Spec.Ports) == 0 {
		p.add(o, "spec.ports: at least one port is required")
	}
	for i, port := range s.Spec.Ports {
		pp := fmt.Sprintf("spec.ports[%d]", i)
		p.addAll(o, pp+".port", validation.IsValidPortNum(int(port.Port)))
		if len(s.Spec.Ports) > 1 && port.Name == "" {
			p.add(o, "%s.name is required when a Service has more than one port", pp)
		}
		if port.TargetPort.Type == intstr.Int && port.TargetPort.IntVal != 0 {
			p.addAll(o, pp+".targetPort", validation.IsValidPortNum(int(port.TargetPort.IntVal)))
		}
	}
	if len(s.Spec.Selector) == 0 {
		return // a Service without a selector is legal: its endpoints are managed by hand
	}
	selector := labels.SelectorFromSet(s.Spec.Selector)
	for _, other := range all {
		if d, ok := other.value.(*appsv1.Deployment); ok && d.Namespace == s.Namespace && selector.Matches(labels.Set(d.Spec.Template.Labels)) {
			for i, port := range s.Spec.Ports {
				target := port.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(port.Port)
				}
				found := false
				for _, c := range d.Spec.Template.Spec.Containers {
					found = found || portOf(c, target)
				}
				if !found {
					p.add(o, "spec.ports[%d]: target port %s is no container port of Deployment %s", i, target.String(), d.Name)
				}
			}
			return
		}
	}
	p.add(o, "spec.selector matches no Deployment's pods among the manifests")
}

func checkHPA(o *object, h *autoscalingv2.HorizontalPodAutoscaler, all []*object, p *problems) {
	ref := h.Spec.ScaleTargetRef
	if ref.Kind == "" || ref.Name == "" {
		p.add(o, "spec.scaleTargetRef: kind and name are required")
	}
	if h.Spec.MaxReplicas < 1 {
		p.add(o, "spec.maxReplicas must be at least 1")
	}
	if min := h.Spec.MinReplicas; min != nil && (*min < 1 || *min > h.Spec.MaxReplicas) {
		p.add(o, "spec.minReplicas must be between 1 and maxReplicas")
	}
	var target *appsv1.Deployment
	if ref.Kind == "Deployment" {
		if t := find(all, "apps/v1/Deployment", o.meta.Namespace, ref.Name); t != nil {
			target = t.value.(*appsv1.Deployment)
		} else {
			p.add(o, "spec.scaleTargetRef: no Deployment %q in namespace %q among the manifests", ref.Name, o.meta.Namespace)
		}
	}
	for i, m := range h.Spec.Metrics {
		mp := fmt.Sprintf("spec.metrics[%d]", i)
		if m.Type != autoscalingv2.ResourceMetricSourceType {
			continue
		}
		if m.Resource == nil {
			p.add(o, "%s.resource is required for type Resource", mp)
			continue
		}
		t := m.Resource.Target
		switch t.Type {
		case autoscalingv2.UtilizationMetricType:
			if t.AverageUtilization == nil || *t.AverageUtilization < 1 {
				p.add(o, "%s.resource.target.averageUtilization must be at least 1", mp)
			}
			// Utilization is usage over request: a container without a request leaves the HPA unable to act.
			if target != nil {
				for _, c := range target.Spec.Template.Spec.Containers {
					if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
						p.add(o, "%s: container %q of Deployment %s requests no %s, so its utilization is undefined", mp, c.Name, target.Name, m.Resource.Name)
					}
				}
			}
		case autoscalingv2.AverageValueMetricType:
			if t.AverageValue == nil {
				p.add(o, "%s.resource.target.averageValue is required", mp)
			}
		default:
			p.add(o, "%s.resource.target.type must be Utilization or AverageValue", mp)
		}
	}
}
