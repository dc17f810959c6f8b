{{- define "dynoline.name" -}}dynoline{{- end -}}

{{- define "dynoline.fullname" -}}
{{- if contains "dynoline" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-dynoline" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dynoline.baseLabels" -}}
app.kubernetes.io/name: {{ include "dynoline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "dynoline.labels" -}}
{{ include "dynoline.baseLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "dynoline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dynoline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "dynoline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dynoline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dynoline.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) -}}
{{- end -}}

{{- /* An alert's labels: its severity, then prometheusRule.additionalRuleLabels (kube-prometheus-stack's name). */}}
{{- define "dynoline.ruleLabels" -}}
severity: {{ .severity }}
{{- with .ctx.Values.prometheusRule.additionalRuleLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- /* runbook_url: prometheusRule.runbookUrl (a docs/runbooks.md) with the alert's section anchor. */}}
{{- define "dynoline.runbook" -}}
{{- printf "%s#%s" (trimSuffix "/" .ctx.Values.prometheusRule.runbookUrl) (lower .alert) -}}
{{- end -}}

{{- /* imagePullSecrets ({name: x} entries, as the schema requires) as a comma-separated list of names. */}}
{{- define "dynoline.pullSecretNames" -}}
{{- $names := list -}}
{{- range .Values.imagePullSecrets -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{- /* interval, scrapeTimeout and metricRelabelings of a ServiceMonitor or PodMonitor endpoint. */}}
{{- define "dynoline.scrapeSettings" -}}
interval: {{ .interval }}
{{- with .scrapeTimeout }}
scrapeTimeout: {{ . }}
{{- end }}
{{- with .metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "dynoline.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "dynoline.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dynoline.postgresql.labels" -}}
{{ include "dynoline.baseLabels" . }}
app.kubernetes.io/component: postgresql
{{- end -}}

{{- define "dynoline.postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dynoline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: postgresql
{{- end -}}

{{- /* The bundled PostgreSQL's password: postgresql.password, else the one already in the release's Secret
       (kept across upgrades), else a new random one. */}}
{{- define "dynoline.postgresql.password" -}}
{{- if .Values.postgresql.password -}}
{{- .Values.postgresql.password -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "dynoline.postgresql.fullname" .) -}}
{{- if and $existing $existing.data (hasKey $existing.data "password") -}}
{{- index $existing.data "password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* NOTES.txt: a DynoLine to apply, streaming into the Secret `.secret` in namespace `.ns`. */}}
{{- define "dynoline.notesLine" }}
kubectl -n {{ .ns }} apply -f - <<'YAML'
apiVersion: dynoline.dev/v1alpha1
kind: DynoLine
metadata: {name: line-a}
spec:
  units: 20
  shards: 1
  database: {secretRef: {name: {{ .secret }}, key: uri}}
YAML
{{- end }}
