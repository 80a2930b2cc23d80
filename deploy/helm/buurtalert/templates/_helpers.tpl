{{/* The base of every resource name: the release's (e.g. buurtalert-weert). */}}
{{- define "buurtalert.fullname" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end }}

{{- define "buurtalert.selectorLabels" -}}
app.kubernetes.io/name: buurtalert
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "buurtalert.labels" -}}
{{ include "buurtalert.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.municipality }}
buurtalert.nl/municipality: {{ . | quote }}
{{- end }}
{{- end }}

{{/* The image of a service: (list $ "ingest") */}}
{{- define "buurtalert.image" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $svc := index $root.Values.services $name | default dict -}}
{{- if $svc.image -}}
{{- $svc.image -}}
{{- else -}}
{{- printf "%s/buurtalert-%s:%s" $root.Values.image.registry $name ($root.Values.image.tag | default $root.Chart.AppVersion) -}}
{{- end -}}
{{- end }}

{{/* Fails rendering when a service has more replicas than the partitions of a topic it reads,
or the review console more than one: (list $ name svc). The bounds come from the generated
templates/topics.yaml. */}}
{{- define "buurtalert.checkReplicas" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $svc := index . 2 -}}
{{- if and (eq $name "review") (gt (int $svc.replicas) 1) -}}
{{- fail (printf "services.review.replicas is %d, but the review console runs as one process: it serialises the changes of a queue item in memory, because FerretDB v1 does not apply a conditional update atomically across clients. Keep services.review.replicas at 1 (its Deployment is replaced, not rolled, on an upgrade)." (int $svc.replicas)) -}}
{{- end -}}
{{- $bounds := include "buurtalert.partitionBounds" $root | fromYaml -}}
{{- $consumer := $svc.topicsConsumer | default $name -}}
{{- with get $bounds $consumer -}}
{{- if gt (int $svc.replicas) (int .partitions) -}}
{{- fail (printf "services.%s.replicas is %d, but %s reads the topic %s, which has %d partitions: each partition goes to one member of a consumer group, so a replica more would sit idle. Lower services.%s.replicas to %d or less, or raise the topic's partitions in shared/src/buurtalert/shared/topics.py and run `make helm-topics`." $name (int $svc.replicas) $name .topic (int .partitions) $name (int .partitions)) -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* A topic's name on the broker: (list $ "messages.inbound") */}}
{{- define "buurtalert.topicName" -}}
{{- $root := index . 0 -}}
{{- printf "%s%s" $root.Values.kafka.topicPrefix (index . 1) | quote -}}
{{- end }}

{{/* A KafkaTopic's resource name (DNS-1123): the prefixed topic name with dots as dashes. */}}
{{- define "buurtalert.topicResourceName" -}}
{{- $root := index . 0 -}}
{{- $name := printf "%s%s" $root.Values.kafka.topicPrefix (index . 1) | lower | replace "." "-" | replace "_" "-" -}}
{{- if gt (len $name) 253 -}}
{{- fail (printf "the KafkaTopic name %s is longer than 253 characters" $name) -}}
{{- end -}}
{{- $name -}}
{{- end }}

{{- define "buurtalert.topicLabels" -}}
strimzi.io/cluster: {{ .Values.kafka.strimzi.cluster | quote }}
{{ include "buurtalert.labels" . }}
{{- end }}

{{/* A topic's config: (list $ "messages.inbound" "personalData") */}}
{{- define "buurtalert.topicConfig" -}}
{{- $root := index . 0 -}}
{{- $topic := index . 1 -}}
{{- $class := index . 2 -}}
{{- $retention := index $root.Values.kafka.retention (printf "%sMs" $class) -}}
{{- $retention = index $root.Values.kafka.retentionOverrides $topic | default $retention -}}
cleanup.policy: delete
retention.ms: {{ int64 $retention }}
min.insync.replicas: {{ min (int $root.Values.kafka.minInsyncReplicas) (int $root.Values.kafka.replicationFactor) }}
{{- end }}

{{/* A partner adapter's channel name, as settings.ChannelName: (list $ "name") */}}
{{- define "buurtalert.checkPartnerChannel" -}}
{{- $channel := index . 1 -}}
{{- if not (regexMatch "^[a-z][a-z0-9-]{0,39}$" $channel) -}}
{{- fail (printf "kafka.partnerChannels: %q is not a channel name (lower-case letters, digits and '-', 40 at most)" $channel) -}}
{{- end -}}
{{- if has $channel (include "buurtalert.builtinChannels" (index . 0) | fromYamlArray) -}}
{{- fail (printf "kafka.partnerChannels: %q is a built-in adapter, whose topic always exists" $channel) -}}
{{- end -}}
{{- end }}

{{/* Environment of every buurtalert container: (list $ svc) */}}
{{- define "buurtalert.env" -}}
{{- $root := index . 0 -}}
{{- $svc := index . 1 -}}
- name: BUURTALERT_KAFKA_BOOTSTRAP
  value: {{ $root.Values.kafka.bootstrap | quote }}
- name: BUURTALERT_TOPIC_PREFIX
  value: {{ $root.Values.kafka.topicPrefix | quote }}
- name: BUURTALERT_MONGO_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "mongo.existingSecret: name the Secret that holds the MongoDB URL" $root.Values.mongo.existingSecret }}
      key: {{ $root.Values.mongo.urlKey }}
- name: BUURTALERT_DATABASE
  value: {{ $root.Values.mongo.database | quote }}
- name: BUURTALERT_MUNICIPALITY_FILE
  value: /etc/buurtalert/municipality/municipality.yaml
- name: BUURTALERT_ENVIRONMENT
  value: {{ $root.Values.environment | quote }}
- name: BUURTALERT_LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
- name: BUURTALERT_RETRY_DELAYS
  value: {{ toJson $root.Values.retryDelays | quote }}
- name: BUURTALERT_HTTP_HOST
  value: "0.0.0.0"
{{- with $svc.httpPort }}
- name: BUURTALERT_HTTP_PORT
  value: {{ . | quote }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The municipality file's volume (a Secret) and /tmp. */}}
{{- define "buurtalert.volumes" -}}
- name: municipality
  secret:
    secretName: {{ required "municipalityFile.existingSecret: name the Secret that holds the municipality file" .Values.municipalityFile.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.municipalityFile.key }}
        path: municipality.yaml
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "buurtalert.volumeMounts" -}}
- name: municipality
  mountPath: /etc/buurtalert/municipality
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "buurtalert.podPlacement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The directory's ConfigMap name, or its existing Secret's. */}}
{{- define "buurtalert.directoryConfigMap" -}}
{{- .Values.directory.existingConfigMap | default (printf "%s-directory" (include "buurtalert.fullname" .)) -}}
{{- end }}
