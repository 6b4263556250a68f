{{- define "datacloud.name" -}}datacloud-operator{{- end -}}
{{- define "datacloud.namespace" -}}{{ default .Release.Namespace .Values.operatorNamespace }}{{- end -}}
{{- define "datacloud.labels" -}}
app.kubernetes.io/name: {{ include "datacloud.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: datacloud
{{- end -}}
{{- define "datacloud.selector" -}}
app.kubernetes.io/name: {{ include "datacloud.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "datacloud.image" -}}{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}{{- end -}}
