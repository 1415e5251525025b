{{/*
Names follow govfn.manifest.names: a DNS-1123 label of at most 63 characters; a longer one
is cut to 54 and given the first 8 hex digits of the sha256 of its key.
*/}}
{{- define "govfn.bounded" -}}
{{- $name := index . 0 -}}{{- $key := index . 1 -}}
{{- if le (len $name) 63 -}}
{{- $name -}}
{{- else -}}
{{- printf "%s-%s" (regexReplaceAll "-+$" ($name | trunc 54) "") (sha256sum $key | trunc 8) -}}
{{- end -}}
{{- end -}}

{{- define "govfn.slug" -}}
{{- regexReplaceAll "[^a-z0-9]+" (lower .) "-" | trimAll "-" -}}
{{- end -}}

{{- define "govfn.serviceName" -}}
{{- $root := index . 0 -}}{{- $fn := index . 1 -}}
{{- if not (regexMatch "^([a-z0-9][-a-z0-9]*)?$" $root.Values.namePrefix) -}}
{{- fail (printf "namePrefix: %q must be lower-case letters, digits and '-', not first" $root.Values.namePrefix) -}}
{{- end -}}
{{- $name := printf "%s%s" $root.Values.namePrefix $fn.id -}}
{{- include "govfn.bounded" (list $name $name) -}}
{{- end -}}

{{- define "govfn.triggerName" -}}
{{- $service := index . 0 -}}{{- $type := index . 1 -}}
{{- $slug := include "govfn.slug" $type | default "event" -}}
{{- include "govfn.bounded" (list (printf "%s-%s" $service $slug) (printf "%s\x1f%s" $service $type)) -}}
{{- end -}}

{{- define "govfn.sinkBindingName" -}}
{{- include "govfn.bounded" (list (printf "%s-chronicle" .) (printf "%s\x1fchronicle" .)) -}}
{{- end -}}

{{/* Labels shared by a function's objects: the user's, then the app.kubernetes.io set. */}}
{{- define "govfn.labels" -}}
{{- $root := index . 0 -}}{{- $fn := index . 1 -}}{{- $component := index . 2 -}}
{{- $labels := dict -}}
{{- range $key, $value := $root.Values.labels -}}{{- $_ := set $labels $key ($value | toString) -}}{{- end -}}
{{- $_ := set $labels "app.kubernetes.io/component" $component -}}
{{- $_ := set $labels "app.kubernetes.io/managed-by" "govfn" -}}
{{- $_ := set $labels "app.kubernetes.io/name" $fn.id -}}
{{- $_ := set $labels "app.kubernetes.io/part-of" $root.Values.app -}}
{{- $_ := set $labels "app.kubernetes.io/version" (regexReplaceAll "[^A-Za-z0-9._-]" ($fn.version | default "1.0.0" | toString) "_" | trunc 63) -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "govfn.metadata" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}{{- $labels := index . 2 -}}{{- $annotations := index . 3 -}}
name: {{ $name | quote }}
{{- with $root.Values.namespace }}
namespace: {{ . | quote }}
{{- end }}
labels:
  {{- $labels | nindent 2 }}
annotations:
  {{- toYaml $annotations | nindent 2 }}
{{- end -}}

{{/*
Knative sender identity (govfn.manifest.oidc). The OIDC service account of a Trigger is
kmeta.ChildName(name, "-oidc-eventing.knative.dev-Trigger"), lower-cased: a name of up to 29
characters keeps the suffix; a longer one is cut to 31 and given an md5, which Helm cannot
compute: `govfn manifests --format helm-values` writes those in functions[].triggerServiceAccounts.
*/}}
{{- define "govfn.oidcNamespace" -}}
{{- .Values.namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "govfn.audience" -}}
{{- $root := index . 0 -}}{{- $service := index . 1 -}}
{{- printf "serving.knative.dev/service/%s/%s" (include "govfn.oidcNamespace" $root) $service | lower -}}
{{- end -}}

{{- define "govfn.triggerServiceAccount" -}}
{{- $fn := index . 0 -}}{{- $trigger := index . 1 -}}
{{- $given := get ($fn.triggerServiceAccounts | default dict) $trigger -}}
{{- if $given -}}
{{- $given -}}
{{- else if le (len $trigger) 29 -}}
{{- printf "%s-oidc-eventing.knative.dev-trigger" $trigger | lower -}}
{{- else -}}
{{- fail (printf "functions[%s].triggerServiceAccounts: Trigger %q is longer than 29 characters, so Knative names its OIDC service account with an md5 Helm cannot compute; write the values with govfn manifests --oidc-issuer ... --format helm-values" $fn.id $trigger) -}}
{{- end -}}
{{- end -}}

{{/* GOVFN_EVENT_SENDERS of a function: `triggers` stands for its own Triggers' subjects. */}}
{{- define "govfn.eventSenders" -}}
{{- $root := index . 0 -}}{{- $fn := index . 1 -}}{{- $service := index . 2 -}}
{{- $namespace := include "govfn.oidcNamespace" $root -}}
{{- $subjects := list -}}
{{- range $sender := $root.Values.oidc.eventSenders -}}
{{- if eq $sender "triggers" -}}
{{- if not $fn.triggers -}}
{{- fail (printf "oidc.eventSenders: Service %q has no Triggers: 'triggers' would allow no sender" $service) -}}
{{- end -}}
{{- range $type := $fn.triggers -}}
{{- $account := include "govfn.triggerServiceAccount" (list $fn (include "govfn.triggerName" (list $service $type))) -}}
{{- $subjects = append $subjects (printf "system:serviceaccount:%s:%s" $namespace $account) -}}
{{- end -}}
{{- else -}}
{{- $subjects = append $subjects $sender -}}
{{- end -}}
{{- end -}}
{{- join "," ($subjects | uniq) -}}
{{- end -}}
