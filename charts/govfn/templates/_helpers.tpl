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
