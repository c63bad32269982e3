#!/usr/bin/python3
"""deploy/kubernetes/*.yaml checked against the Kubernetes API schemas that Debian's python3-kubernetes
(the official client) carries: every object's kind is known, every field exists in its type (a typo is an
error, as `kubectl apply --validate` reports it), every value has its field's type, required fields are
there. kubectl's own validation needs a cluster to download the schema from, so CI cannot run it.
python3-kubernetes 22.6 predates autoscaling/v2's GA (Kubernetes 1.23): an autoscaling/v2
HorizontalPodAutoscaler is checked against v2beta2, whose schema v2 kept field for field.
Exit 77 (skipped) without python3-kubernetes or python3-yaml.

  check_kubernetes.py FILE.yaml...
"""
import sys

try:
    import yaml
    import kubernetes.client as k8s
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

TYPES = {("apps/v1", "Deployment"): "V1Deployment", ("v1", "Service"): "V1Service",
         ("v1", "ConfigMap"): "V1ConfigMap", ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
         ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
         ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
         ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget"}
errors = []


def check(value, type_name, path):
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return errors.append(f"{path}: a list expected, got {value!r}")
        for i, v in enumerate(value):
            check(v, type_name[5:-1], f"{path}[{i}]")
    elif type_name.startswith("dict("):
        if not isinstance(value, dict):
            return errors.append(f"{path}: a map expected, got {value!r}")
        inner = type_name[5:-1].split(", ", 1)[1]
        for k, v in value.items():
            check(v, inner, f"{path}.{k}")
    elif type_name == "str":
        if not isinstance(value, str):
            errors.append(f"{path}: a string expected, got {value!r} (quote it)")
    elif type_name == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: an integer expected, got {value!r}")
    elif type_name == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: true or false expected, got {value!r}")
    elif type_name in ("object", "float", "datetime", "date"):
        pass  # int-or-string fields and free-form objects
    else:
        cls = getattr(k8s, type_name)
        if not isinstance(value, dict):
            return errors.append(f"{path}: a {type_name} object expected, got {value!r}")
        by_key = {key: attr for attr, key in cls.attribute_map.items()}
        for key, v in value.items():
            if key not in by_key:
                errors.append(f"{path}: unknown field {key!r} in {type_name} (fields: {', '.join(sorted(by_key))})")
            else:
                check(v, cls.openapi_types[by_key[key]], f"{path}.{key}")
        try:  # the model's own checks: required fields, enumerations
            cls(**{by_key[k]: v for k, v in value.items() if k in by_key})
        except (ValueError, TypeError) as e:
            errors.append(f"{path}: {type_name}: {e}")


count = 0
for name in sys.argv[1:]:
    for i, doc in enumerate(yaml.safe_load_all(open(name))):
        if doc is None:
            continue
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key not in TYPES:
            errors.append(f"{name} document {i}: unknown apiVersion/kind {key}")
            continue
        check(doc, TYPES[key], f"{name}:{doc['kind']}/{doc.get('metadata', {}).get('name', '?')}")
        count += 1
for e in errors:
    print(e)
print(f"{count} objects checked, {len(errors)} errors")
sys.exit(1 if errors or count == 0 else 0)
