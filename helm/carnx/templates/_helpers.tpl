{{/*
carnx.name: the chart name, or nameOverride; used in labels and as the base of resource names.
*/}}
{{- define "carnx.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
carnx.fullname: the prefix of every resource name: fullnameOverride, else <release>-<name>, or just the release
name when it already contains the chart name (helm install carnx ... gives "carnx", not "carnx-carnx").
Truncated to 63 characters because label values and DNS names are limited to that.
*/}}
{{- define "carnx.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
carnx.selectorLabels: the labels the DaemonSet selects its pods by. They must never change after install
(a DaemonSet's selector is immutable), so they hold only the name and the release.
*/}}
{{- define "carnx.selectorLabels" -}}
app.kubernetes.io/name: {{ include "carnx.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
carnx.labels: the recommended Kubernetes labels on every resource: the selector labels plus version and chart.
*/}}
{{- define "carnx.labels" -}}
{{ include "carnx.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
carnx.image: repository:tag, the tag defaulting to the chart's appVersion so chart and agent move together.
*/}}
{{- define "carnx.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
carnx.serviceAccountName: the account the pods run as: the chart's own when it creates one, else the given
name or "default".
*/}}
{{- define "carnx.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "carnx.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
carnx.priorityClassName: the PriorityClass the pods use: the chart's own when it creates one, else
priorityClass.name (possibly empty: no class).
*/}}
{{- define "carnx.priorityClassName" -}}
{{- if .Values.priorityClass.create }}
{{- default (include "carnx.fullname" .) .Values.priorityClass.name }}
{{- else }}
{{- .Values.priorityClass.name }}
{{- end }}
{{- end }}

{{/*
carnx.headersSecretName: the Secret holding the OTLP headers (the user's existingSecret or the chart's own),
or "" when no headers are configured.
*/}}
{{- define "carnx.headersSecretName" -}}
{{- if .Values.otlp.existingSecret.name }}
{{- .Values.otlp.existingSecret.name }}
{{- else if .Values.otlp.headers }}
{{- printf "%s-otlp-headers" (include "carnx.fullname" .) }}
{{- end }}
{{- end }}

{{/*
carnx.headersSecretKey: the key of that Secret whose value is the header list.
*/}}
{{- define "carnx.headersSecretKey" -}}
{{- if .Values.otlp.existingSecret.name }}{{ .Values.otlp.existingSecret.key }}{{ else }}headers{{ end }}
{{- end }}

{{/*
carnx.headersValue: otlp.headers as one "name=value,..." string, the format carnx reads from CARNX_OTLP_HEADERS.
Names are sorted so the Secret (and its checksum) is stable; values are percent-encoded (urlquery writes a
space as "+", which the agent would not decode, so "+" becomes %20; a literal "+" is already %2B).
*/}}
{{- define "carnx.headersValue" -}}
{{- $pairs := list }}
{{- range $name := keys .Values.otlp.headers | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $name (urlquery (index $.Values.otlp.headers $name) | replace "+" "%20")) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
carnx.nodeEndpoint: true when exports go to the collector on the node (otlp.endpoint empty). Its address is
only known per pod (status.hostIP), so it travels in an environment variable instead of the ConfigMap.
*/}}
{{- define "carnx.nodeEndpoint" -}}
{{- if not .Values.otlp.endpoint }}true{{ end }}
{{- end }}

{{/*
carnx.usesTls: "true" when exports use TLS, by the agent's own rule: https://, or no scheme unless
tls.insecure. Used to refuse TLS files that would be ignored.
*/}}
{{- define "carnx.usesTls" -}}
{{- if include "carnx.nodeEndpoint" . }}
{{- if eq .Values.otlp.nodeCollector.scheme "https" }}true{{ end }}
{{- else if hasPrefix "https://" (lower .Values.otlp.endpoint) }}true
{{- else if and (not (hasPrefix "http://" (lower .Values.otlp.endpoint))) (not .Values.otlp.tls.insecure) }}true
{{- end }}
{{- end }}

{{/*
carnx.validate: fails the render, with what to change, on combinations of values that cannot work.
The agent validates its own config again at start; these are the ones that involve the chart's Secrets and
mounts, so they are better caught at install time.
*/}}
{{- define "carnx.validate" -}}
{{- $o := .Values.otlp }}
{{- if and $o.headers $o.existingSecret.name }}
{{- fail "otlp.headers and otlp.existingSecret.name are both set: put every header in the existing Secret, or drop existingSecret.name" }}
{{- end }}
{{- if and $o.existingSecret.name (not $o.existingSecret.key) }}
{{- fail "otlp.existingSecret.key is empty: name the key of the Secret that holds the header list" }}
{{- end }}
{{- if and (or $o.tls.ca $o.tls.cert $o.tls.key) (not $o.tls.existingSecret) }}
{{- fail "otlp.tls.ca/cert/key name keys of a Secret, but otlp.tls.existingSecret is empty: set it to the Secret holding the PEM files" }}
{{- end }}
{{- if ne (empty $o.tls.cert) (empty $o.tls.key) }}
{{- fail "otlp.tls.cert and otlp.tls.key must be set together: mutual TLS needs both the certificate and its key" }}
{{- end }}
{{- if and (or $o.tls.ca $o.tls.cert) (not (include "carnx.usesTls" .)) }}
{{- fail "otlp.tls.ca/cert are set but exports are plaintext: use an https:// endpoint (or otlp.nodeCollector.scheme https), or drop the TLS files" }}
{{- end }}
{{- if and $o.tls.insecure (or (include "carnx.nodeEndpoint" .) (hasPrefix "http://" (lower $o.endpoint)) (hasPrefix "https://" (lower $o.endpoint))) }}
{{- fail "otlp.tls.insecure only applies to an endpoint without a scheme: write http:// in otlp.endpoint instead" }}
{{- end }}
{{- if ge (int64 .Values.export.shutdownTimeoutMs) (mul (int64 .Values.terminationGracePeriodSeconds) 1000) }}
{{- fail "export.shutdownTimeoutMs must be shorter than terminationGracePeriodSeconds, or the kubelet kills the agent before it detaches" }}
{{- end }}
{{- end }}

{{/*
carnx.resourceAttributes: resource.attributes for the config file as a JSON mapping: k8s.cluster.name from
clusterName (when set), then resourceAttributes, which win. k8s.node.name is not here: the agent reads it from
K8S_NODE_NAME (downward API), since one ConfigMap serves every node.
*/}}
{{- define "carnx.resourceAttributes" -}}
{{- $attrs := dict }}
{{- if .Values.clusterName }}
{{- $_ := set $attrs "k8s.cluster.name" .Values.clusterName }}
{{- end }}
{{- toJson (merge (deepCopy .Values.resourceAttributes) $attrs) }}
{{- end }}
