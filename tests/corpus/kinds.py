"""One generator per credential kind: every rule of the pack, the credential files, generic secrets.

A kind makes a `Plant` from a seeded `Rand`: the text of a file holding the secret in a realistic
context, the exact secret a scanner must report, and (for one-line secrets) the variable it can
sit in as an ENV value or build arg. Categories are the rule pack's families plus
`credential-files`; the id is the detector rule expected to report it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from tests.corpus import material as m
from tests.corpus.material import Rand


@dataclass(frozen=True)
class Plant:
    text: str | bytes  # the file's content (bytes for binary key stores)
    secret: str | bytes  # exactly what must be reported
    env: Optional[tuple[str, str]] = None  # (NAME, value) as an ENV value / build arg; None: file only


@dataclass(frozen=True)
class Kind:
    id: str
    category: str
    make: Callable[[Rand], Plant]
    name: str = "config.env"  # the file's name (it decides how detectors read it)
    path: Optional[str] = None  # a fixed place (credential files); None: anywhere


KINDS: list[Kind] = []


def kind(id: str, category: str, name: str = "config.env", path: Optional[str] = None):
    def register(make: Callable[[Rand], Plant]) -> Callable[[Rand], Plant]:
        KINDS.append(Kind(id, category, make, name, path))
        return make
    return register


def env_kind(id: str, category: str, var: str, secret: Callable[[Rand], str], line: str = "{var}={s}",
             name: str = "config.env", env: bool = True) -> None:
    """The common case: `VAR=secret` (or `line`) in a config file, and the same as ENV/build arg."""
    def make(r: Rand) -> Plant:
        s = secret(r)
        text = line.format(var=var, s=s)
        value = text[len(var) + 1:].strip("'\"") if env and text.startswith(var + "=") else None
        return Plant(text + "\n", s, (var, value) if value is not None else None)
    KINDS.append(Kind(id, category, make, name))


# --- ai ------------------------------------------------------------------------------------------
env_kind("openai-project-key", "ai", "OPENAI_API_KEY", lambda r: "sk-proj-" + r.b64u(74) + "T3BlbkFJ" + r.b64u(74))
env_kind("openai-api-key", "ai", "OPENAI_API_KEY", lambda r: "sk-" + r.b62(20) + "T3BlbkFJ" + r.b62(20))
env_kind("anthropic-api-key", "ai", "ANTHROPIC_API_KEY", lambda r: "sk-ant-api03-" + r.b64u(93) + "AA")
env_kind("anthropic-admin-key", "ai", "ANTHROPIC_ADMIN_KEY", lambda r: "sk-ant-admin01-" + r.b64u(93) + "AA")
env_kind("huggingface-token", "ai", "HF_TOKEN", lambda r: "hf_" + r.b62(34))
env_kind("huggingface-org-token", "ai", "HF_ORG_TOKEN", lambda r: "api_org_" + r.b62(34))
env_kind("cohere-api-key", "ai", "COHERE_API_KEY", lambda r: r.b62(40))
env_kind("replicate-api-token", "ai", "REPLICATE_API_TOKEN", lambda r: "r8_" + r.b62(37))
env_kind("groq-api-key", "ai", "GROQ_API_KEY", lambda r: "gsk_" + r.b62(52))
env_kind("perplexity-api-key", "ai", "PERPLEXITY_API_KEY", lambda r: "pplx-" + r.b62(48))
env_kind("xai-api-key", "ai", "XAI_API_KEY", lambda r: "xai-" + r.b62(80))
env_kind("openrouter-api-key", "ai", "OPENROUTER_API_KEY", lambda r: "sk-or-v1-" + r.hex(64))
env_kind("langsmith-api-key", "ai", "LANGSMITH_API_KEY", lambda r: f"lsv2_pt_{r.hex(32)}_{r.hex(10)}")
env_kind("wandb-api-key", "ai", "WANDB_API_KEY", lambda r: r.hex(40))
env_kind("mistral-api-key", "ai", "MISTRAL_API_KEY", lambda r: r.b62(32))

# --- chat ----------------------------------------------------------------------------------------
env_kind("slack-bot-token", "chat", "SLACK_BOT_TOKEN", lambda r: f"xoxb-{r.dig(10)}-{r.dig(13)}-{r.b62(24)}")
env_kind("slack-user-token", "chat", "SLACK_USER_TOKEN",
         lambda r: f"xoxp-{r.dig(10)}-{r.dig(12)}-{r.dig(13)}-{r.hex(32)}")
env_kind("slack-app-token", "chat", "SLACK_APP_TOKEN", lambda r: f"xapp-1-A{r.updig(10)}-{r.dig(13)}-{r.hex(64)}")
env_kind("slack-config-access-token", "chat", "SLACK_CONFIG_TOKEN", lambda r: "xoxe.xoxp-1-" + r.b62(160))
env_kind("slack-config-refresh-token", "chat", "SLACK_REFRESH_TOKEN", lambda r: "xoxe-1-" + r.b62(150))
env_kind("slack-workspace-token", "chat", "SLACK_TOKEN", lambda r: f"xoxa-2-{r.dig(12)}-{r.dig(12)}-{r.hex(64)}")
env_kind("slack-refresh-token", "chat", "SLACK_OAUTH_REFRESH", lambda r: f"xoxr-{r.dig(12)}-{r.b62(64)}")
env_kind("slack-legacy-token", "chat", "SLACK_LEGACY_TOKEN",
         lambda r: f"xoxs-{r.dig(10)}-{r.dig(12)}-{r.dig(12)}-{r.hex(64)}")
env_kind("slack-webhook", "chat", "SLACK_WEBHOOK_URL",
         lambda r: f"https://hooks.slack.com/services/T{r.updig(10)}/B{r.updig(10)}/{r.b62(24)}")
env_kind("discord-bot-token", "chat", "DISCORD_TOKEN",
         lambda r: f"{m.b64u(r.dig(18).encode())}.{r.b64u(6)}.{r.b64u(38)}")
env_kind("discord-webhook", "chat", "DISCORD_WEBHOOK",
         lambda r: f"https://discord.com/api/webhooks/{r.dig(19)}/{r.b64u(68)}")
env_kind("telegram-bot-token", "chat", "TELEGRAM_BOT_TOKEN", lambda r: f"{r.dig(10)}:AA{r.b64u(33)}")
env_kind("teams-webhook", "chat", "TEAMS_WEBHOOK",
         lambda r: f"https://acme.webhook.office.com/webhookb2/{r.uuid()}@{r.uuid()}/IncomingWebhook/"
                   f"{r.hex(32)}/{r.uuid()}")
env_kind("twilio-api-key", "chat", "TWILIO_API_KEY", lambda r: "SK" + r.hex(32))
env_kind("twilio-auth-token", "chat", "TWILIO_AUTH_TOKEN", lambda r: r.hex(32))

# --- ci ------------------------------------------------------------------------------------------
env_kind("circleci-api-token", "ci", "CIRCLE_TOKEN", lambda r: f"CCIPAT_{r.b62(22)}_{r.hex(40)}")
env_kind("circleci-legacy-token", "ci", "CIRCLECI_TOKEN", lambda r: r.hex(40))
env_kind("travis-ci-token", "ci", "TRAVIS_API_TOKEN", lambda r: r.b64u(22))
env_kind("buildkite-token", "ci", "BUILDKITE_API_TOKEN", lambda r: "bkua_" + r.hex(40))
env_kind("jenkins-api-token", "ci", "JENKINS_API_TOKEN", lambda r: "11" + r.hex(32))
env_kind("sonarqube-token", "ci", "SONAR_TOKEN", lambda r: "squ_" + r.hex(40))
env_kind("codecov-token", "ci", "CODECOV_TOKEN", lambda r: r.uuid())
env_kind("snyk-token", "ci", "SNYK_TOKEN", lambda r: r.uuid())

# --- cloud ---------------------------------------------------------------------------------------
env_kind("aws-access-key-id", "cloud", "AWS_ACCESS_KEY_ID", lambda r: "AKIA" + r.chars(m.B32, 16))
env_kind("aws-secret-access-key", "cloud", "AWS_SECRET_ACCESS_KEY", lambda r: r.b64(40))
env_kind("aws-session-token", "cloud", "AWS_SESSION_TOKEN", lambda r: "IQoJb3JpZ2luX2Vj" + r.b64(300))
env_kind("aws-mws-key", "cloud", "MWS_AUTH_TOKEN", lambda r: "amzn.mws." + r.uuid())


@kind("gcp-service-account-key", "cloud", name="service-account.json")
def _gcp(r: Rand) -> Plant:
    key_id = r.hex(40)
    doc = {"type": "service_account", "project_id": f"build-{r.lowdig(6)}", "private_key_id": key_id,
           "client_email": f"ci@build-{r.lowdig(6)}.iam.gserviceaccount.com"}
    return Plant(m.json.dumps(doc, indent=2) + "\n", key_id)


@kind("gcp-oauth-client-secret", "cloud", name="client_secret.json")
def _gcp_oauth(r: Rand) -> Plant:
    s = "GOCSPX-" + r.b64u(28)
    return Plant(m.json.dumps({"web": {"client_id": f"{r.dig(12)}-{r.lowdig(32)}.apps.googleusercontent.com",
                                       "client_secret": s}}) + "\n", s)


env_kind("google-api-key", "cloud", "GOOGLE_MAPS_API_KEY", lambda r: "AIza" + r.b64u(35))
env_kind("google-oauth-access-token", "cloud", "GOOGLE_ACCESS_TOKEN", lambda r: "ya29." + r.b64u(160))
env_kind("firebase-cloud-messaging-server-key", "cloud", "FCM_SERVER_KEY",
         lambda r: f"AAAA{r.b64u(7)}:APA91b{r.b64u(134)}")


@kind("azure-storage-connection-string", "cloud")
def _azure_conn(r: Rand) -> Plant:
    key = m.b64(r.raw(64))
    return Plant(f'AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=build{r.lowdig(6)};'
                 f'AccountKey={key};EndpointSuffix=core.windows.net"\n', key)


@kind("azure-shared-access-key", "cloud")
def _azure_sas_key(r: Rand) -> Plant:
    key = m.b64(r.raw(32))
    return Plant(f"SERVICEBUS=Endpoint=sb://orders-{r.lowdig(5)}.servicebus.windows.net/;"
                 f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key}\n", key)


env_kind("azure-storage-account-key", "cloud", "AZURE_STORAGE_KEY", lambda r: m.b64(r.raw(64)))


@kind("azure-sas-token", "cloud")
def _azure_sas(r: Rand) -> Plant:
    sig = m.b64(r.raw(32)).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    return Plant(f'BLOB_URL="https://build{r.lowdig(5)}.blob.core.windows.net/artifacts?sv=2022-11-02&ss=b&srt=co'
                 f'&sp=rl&se=2026-01-01T00:00:00Z&spr=https&sig={sig}"\n', sig)


env_kind("azure-ad-client-secret", "cloud", "AZURE_CLIENT_SECRET",
         lambda r: f"{r.b62(3)}{r.dig(1)}Q~{r.chars(m.B62 + '_~.-', 34)}")
env_kind("alibaba-access-key-id", "cloud", "ALIBABA_CLOUD_ACCESS_KEY_ID", lambda r: "LTAI5t" + r.b62(8) + r.dig(2) + r.b62(8))
env_kind("alibaba-access-key-secret", "cloud", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", lambda r: r.b62(30))
env_kind("tencent-cloud-secret-id", "cloud", "TENCENTCLOUD_SECRET_ID", lambda r: "AKID" + r.b62(32))
env_kind("digitalocean-pat", "cloud", "DIGITALOCEAN_ACCESS_TOKEN", lambda r: "dop_v1_" + r.hex(64))
env_kind("digitalocean-oauth-token", "cloud", "DO_OAUTH_TOKEN", lambda r: "doo_v1_" + r.hex(64))
env_kind("digitalocean-refresh-token", "cloud", "DO_REFRESH_TOKEN", lambda r: "dor_v1_" + r.hex(64))
env_kind("ibm-cloud-api-key", "cloud", "IBMCLOUD_API_KEY", lambda r: r.b64u(44))
env_kind("heroku-api-key", "cloud", "HEROKU_API_KEY", lambda r: r.uuid())
env_kind("heroku-platform-token", "cloud", "HEROKU_PLATFORM_TOKEN", lambda r: "HRKU-" + r.b64u(60))
env_kind("cloudflare-api-token", "cloud", "CLOUDFLARE_API_TOKEN", lambda r: r.b64u(40))
env_kind("cloudflare-global-api-key", "cloud", "CLOUDFLARE_API_KEY", lambda r: r.hex(37))
env_kind("cloudflare-origin-ca-key", "cloud", "CF_ORIGIN_CA_KEY", lambda r: f"v1.0-{r.hex(24)}-{r.hex(146)}")
env_kind("databricks-token", "cloud", "DATABRICKS_TOKEN", lambda r: "dapi" + r.hex(32))
env_kind("doppler-token", "cloud", "DOPPLER_TOKEN", lambda r: "dp.st.prd." + r.b62(40))
env_kind("pulumi-access-token", "cloud", "PULUMI_ACCESS_TOKEN", lambda r: "pul-" + r.hex(40))
env_kind("terraform-cloud-token", "cloud", "TF_TOKEN_app_terraform_io",
         lambda r: f"{r.b62(14)}.atlasv1.{r.b64u(67)}")
env_kind("vault-service-token", "cloud", "VAULT_TOKEN", lambda r: "hvs." + r.b64u(90))
env_kind("vault-batch-token", "cloud", "VAULT_BATCH_TOKEN", lambda r: "hvb." + r.b64u(138))
env_kind("netlify-access-token", "cloud", "NETLIFY_AUTH_TOKEN", lambda r: "nfp_" + r.b62(36))
env_kind("supabase-access-token", "cloud", "SUPABASE_ACCESS_TOKEN", lambda r: "sbp_" + r.hex(40))
env_kind("supabase-secret-key", "cloud", "SUPABASE_SECRET_KEY", lambda r: "sb_secret_" + r.b64u(31))
env_kind("planetscale-token", "cloud", "PLANETSCALE_SERVICE_TOKEN", lambda r: "pscale_tkn_" + r.b64u(43))

# --- code hosting --------------------------------------------------------------------------------
env_kind("github-pat", "code-hosting", "GITHUB_TOKEN", lambda r: m.checksummed("ghp_", r))
env_kind("github-oauth-token", "code-hosting", "GH_OAUTH_TOKEN", lambda r: m.checksummed("gho_", r))
env_kind("github-user-to-server-token", "code-hosting", "GH_USER_TOKEN", lambda r: m.checksummed("ghu_", r))
env_kind("github-server-to-server-token", "code-hosting", "GH_APP_TOKEN", lambda r: m.checksummed("ghs_", r))
env_kind("github-refresh-token", "code-hosting", "GH_REFRESH_TOKEN", lambda r: "ghr_" + r.b62(76))
env_kind("github-fine-grained-pat", "code-hosting", "GH_PAT", lambda r: f"github_pat_11{r.updig(20)}_{r.b62(59)}")
env_kind("gitlab-pat", "code-hosting", "GITLAB_TOKEN", lambda r: "glpat-" + r.b64u(20))
env_kind("gitlab-deploy-token", "code-hosting", "CI_DEPLOY_PASSWORD", lambda r: "gldt-" + r.b64u(20))
env_kind("gitlab-runner-auth-token", "code-hosting", "RUNNER_TOKEN", lambda r: "glrt-" + r.b64u(20))
env_kind("gitlab-runner-registration-token", "code-hosting", "REGISTRATION_TOKEN", lambda r: "GR1348941" + r.b64u(20))
env_kind("gitlab-oauth-app-secret", "code-hosting", "GITLAB_OAUTH_SECRET", lambda r: "gloas-" + r.hex(64))
env_kind("gitlab-ci-job-token", "code-hosting", "CI_JOB_TOKEN", lambda r: "glcbt-64_" + r.b64u(20))
env_kind("gitlab-pipeline-trigger-token", "code-hosting", "TRIGGER_TOKEN", lambda r: "glptt-" + r.hex(40))
env_kind("gitlab-feed-token", "code-hosting", "GITLAB_FEED_TOKEN", lambda r: "glft-" + r.b64u(20))
env_kind("gitlab-incoming-mail-token", "code-hosting", "INCOMING_EMAIL_TOKEN", lambda r: "glimt-" + r.lowdig(25))
env_kind("gitlab-agent-token", "code-hosting", "AGENT_TOKEN", lambda r: "glagent-" + r.b64u(50))
env_kind("gitlab-scim-token", "code-hosting", "SCIM_TOKEN", lambda r: "glsoat-" + r.b64u(20))
env_kind("gitlab-feature-flags-token", "code-hosting", "UNLEASH_INSTANCE_ID", lambda r: "glffct-" + r.b64u(20))
env_kind("bitbucket-app-password", "code-hosting", "BITBUCKET_APP_PASSWORD", lambda r: "ATBB" + r.b62(32))
env_kind("bitbucket-access-token", "code-hosting", "BITBUCKET_ACCESS_TOKEN", lambda r: "ATCTT3xFfGN0" + r.b64u(180))
env_kind("atlassian-api-token", "code-hosting", "JIRA_API_TOKEN", lambda r: "ATATT3xFfGF0" + r.b64u(180))

# --- databases -----------------------------------------------------------------------------------
env_kind("postgres-uri", "databases", "DATABASE_URL", lambda r: r.b62(20),
         line="{var}=postgres://app:{s}@db.internal:5432/app?sslmode=require")
env_kind("mysql-uri", "databases", "MYSQL_URL", lambda r: r.b62(18), line="{var}=mysql://shop:{s}@mysql.internal:3306/shop")
env_kind("mongodb-uri", "databases", "MONGO_URL", lambda r: r.b62(24),
         line="{var}=mongodb+srv://api:{s}@cluster0.x1y2z.mongodb.net/prod?retryWrites=true")
env_kind("redis-uri", "databases", "REDIS_URL", lambda r: r.b62(32), line="{var}=redis://:{s}@redis-master:6379/0")
env_kind("amqp-uri", "databases", "CELERY_BROKER_URL", lambda r: r.b62(20), line="{var}=amqp://worker:{s}@rabbitmq:5672/prod")
env_kind("jdbc-password", "databases", "JDBC_URL", lambda r: r.b62(18), name="application.properties",
         line="spring.datasource.url=jdbc:postgresql://pg:5432/app?user=app&password={s}&ssl=true", env=False)
env_kind("sql-role-password", "databases", "ROLE", lambda r: r.b62(16), name="roles.sql", env=False,
         line="CREATE ROLE app WITH LOGIN PASSWORD '{s}' VALID UNTIL 'infinity';")
env_kind("sql-identified-by", "databases", "USER", lambda r: r.b62(16), name="init.sql", env=False,
         line="CREATE USER 'shop'@'%' IDENTIFIED WITH caching_sha2_password BY '{s}';")
env_kind("sql-password-hash", "databases", "ROLE", lambda r: f"SCRAM-SHA-256$4096:{r.b64(16)}${r.b64(32)}:{r.b64(32)}",
         name="roles.sql", env=False, line="ALTER ROLE reporting WITH PASSWORD '{s}';")

# --- generic (context rules, keyword and entropy detection) --------------------------------------
env_kind("generic-password", "generic", "DB_PASSWORD", lambda r: r.password(18))
env_kind("generic-password", "generic", "password", lambda r: r.password(16), line="postgres:\n  host: db\n  {var}: {s}",
         name="values.yaml", env=False)
env_kind("generic-secret", "generic", "JWT_SECRET", lambda r: r.b62(40))
env_kind("generic-token", "generic", "MY_SERVICE_TOKEN", lambda r: r.b64u(40), line="{var} = '{s}'", name="settings.conf",
         env=False)
env_kind("generic-api-key", "generic", "API_KEY", lambda r: r.hex(32), line='{var}="{s}"')
env_kind("dockerfile-env-secret", "generic", "REDIS_PASSWORD", lambda r: r.b62(20),
         line="FROM python:3.12-slim\nENV {var} {s}\nRUN pip install -r requirements.txt", name="Dockerfile", env=False)
env_kind("django-secret-key", "generic", "SECRET_KEY", lambda r: "django-insecure-" + r.chars(m.LOWDIG + "!@#$%^&*(-_=+)", 50),
         line="{var} = '{s}'", name="settings.py", env=False)
env_kind("url-credential", "generic", "GIT_REMOTE", lambda r: r.b62(20),
         line="RUN git clone https://deploy:{s}@git.internal.corp/app.git", name="build.sh", env=False)
env_kind("authorization-bearer", "generic", "CURL", lambda r: r.b64u(40),
         line='RUN curl -fsSL -H "Authorization: Bearer {s}" https://artifacts.internal.corp/app.tgz', name="build.sh",
         env=False)
env_kind("authorization-basic", "generic", "WGET", lambda r: m.basic("ci", r.b62(20)),
         line='RUN wget --header="Authorization: Basic {s}" https://nexus.internal.corp/repo/app.jar', name="build.sh",
         env=False)
env_kind("curl-user-password", "generic", "CURL", lambda r: r.b62(18),
         line="RUN curl -fsSL -u deploy:{s} https://nexus.internal.corp/repo/app.tgz -o /tmp/app.tgz", name="build.sh",
         env=False)
env_kind("cli-password-flag", "generic", "CONFIGURE", lambda r: r.b62(16),
         line="RUN ./configure-db --admin-password={s} --host db", name="build.sh", env=False)
env_kind("cli-short-password-flag", "generic", "LOGIN", lambda r: r.b62(16),
         line="RUN docker login -u ci -p {s} registry.internal.corp", name="build.sh", env=False)
env_kind("netrc-password", "generic", "NETRC", lambda r: r.b62(20),
         line="machine api.internal.corp login ci@acme.corp password {s}", name="netrc.txt", env=False)
env_kind("xml-password", "generic", "XML", lambda r: r.b62(16),
         line="<settings><servers><server><id>releases</id><username>deploy</username><password>{s}</password>"
              "</server></servers></settings>", name="settings.xml", env=False)
env_kind("nuget-config-password", "generic", "NUGET", lambda r: r.b62(20),
         line='<configuration><packageSourceCredentials><internal><add key="Username" value="ci" />'
              '<add key="ClearTextPassword" value="{s}" /></internal></packageSourceCredentials></configuration>',
         name="NuGet.Config", env=False)
env_kind("jwt", "generic", "API_TOKEN", m.jwt)
env_kind("password-hash", "generic", "admin", lambda r: f"$apr1${r.b62(8)}${r.chars(m.B62 + './', 22)}",
         line="{var}:{s}", name=".htpasswd", env=False)
env_kind("keyword-secret", "generic", "service_key", lambda r: r.password(20), line='"{var}": "{s}",', name="app.json",
         env=False)
env_kind("keyword-secret", "generic", "CLIENT_KEY", lambda r: r.password(20))
env_kind("keyword-secret", "generic", "DB_PASS", lambda r: r.password(16), line="{var}: {s}", name="db.yaml", env=False)
env_kind("high-entropy-secret", "generic", "credentials", lambda r: r.b64(48), line='{var} = "{s}"', name="client.toml",
         env=False)
env_kind("high-entropy-secret", "generic", "PRIV_KEY", lambda r: r.hex(64))

# --- keys ----------------------------------------------------------------------------------------
for _rule, _label, _der in (("rsa-private-key", "RSA PRIVATE KEY", m.rsa_der), ("ec-private-key", "EC PRIVATE KEY", m.ec_der),
                            ("dsa-private-key", "DSA PRIVATE KEY", m.dsa_der),
                            ("pkcs8-private-key", "PRIVATE KEY", m.pkcs8_der),
                            ("encrypted-private-key", "ENCRYPTED PRIVATE KEY", m.encrypted_pkcs8_der)):
    def _pem_kind(r: Rand, label: str = _label, der=_der) -> Plant:
        key = m.pem(label, der(r))
        return Plant(key, key.strip())
    KINDS.append(Kind(_rule, "keys", _pem_kind, name="server.key"))


@kind("rsa-private-key", "keys", name="legacy.pem")
def _legacy(r: Rand) -> Plant:
    key = m.legacy_encrypted_rsa(r)
    return Plant(key, key.strip())


@kind("openssh-private-key", "keys", name="id_ed25519")
def _openssh(r: Rand) -> Plant:
    key = m.openssh(r)
    return Plant(key, key.strip())


@kind("putty-private-key", "keys", name="deploy.ppk")
def _putty(r: Rand) -> Plant:
    key = m.putty(r)
    return Plant(key, key.strip())


@kind("pgp-private-key", "keys", name="signing.asc")
def _pgp(r: Rand) -> Plant:
    key = m.pgp(r)
    return Plant(key, key.strip())


@kind("age-secret-key", "keys", name="keys.txt")
def _age(r: Rand) -> Plant:
    key = m.age_key(r)
    return Plant(f"# created: 2024-05-01T10:00:00Z\n# public key: age1{r.lowdig(58)}\n{key}\n", key, ("SOPS_AGE_KEY", key))


@kind("base64-private-key", "keys", name="kubeconfig.yaml")
def _b64_key(r: Rand) -> Plant:
    data = m.b64(m.pem("RSA PRIVATE KEY", m.rsa_der(r)).encode())
    return Plant(f"users:\n- name: admin\n  user:\n    client-key-data: {data}\n", data)


# --- mail ----------------------------------------------------------------------------------------
env_kind("sendgrid-api-key", "mail", "SENDGRID_API_KEY", lambda r: f"SG.{r.b64u(22)}.{r.b64u(43)}")
env_kind("mailgun-api-key", "mail", "MAILGUN_API_KEY", lambda r: "key-" + r.hex(32))
env_kind("mailchimp-api-key", "mail", "MAILCHIMP_API_KEY", lambda r: f"{r.hex(32)}-us{r.randrange(1, 22)}")
env_kind("postmark-server-token", "mail", "POSTMARK_SERVER_TOKEN", lambda r: r.uuid())
env_kind("mandrill-api-key", "mail", "MANDRILL_API_KEY", lambda r: "md-" + r.b64u(22))
env_kind("brevo-api-key", "mail", "BREVO_API_KEY", lambda r: f"xkeysib-{r.hex(64)}-{r.b62(16)}")
env_kind("brevo-smtp-key", "mail", "SMTP_KEY", lambda r: f"xsmtpsib-{r.hex(64)}-{r.b62(16)}")

# --- observability -------------------------------------------------------------------------------
env_kind("datadog-api-key", "observability", "DD_API_KEY", lambda r: r.hex(32))
env_kind("datadog-app-key", "observability", "DD_APP_KEY", lambda r: r.hex(40))
env_kind("newrelic-user-api-key", "observability", "NEW_RELIC_API_KEY", lambda r: "NRAK-" + r.updig(27))
env_kind("newrelic-insert-key", "observability", "NEW_RELIC_INSERT_KEY", lambda r: "NRII-" + r.b64u(32))
env_kind("newrelic-license-key", "observability", "NEW_RELIC_LICENSE_KEY", lambda r: r.hex(36) + "NRAL")
env_kind("newrelic-browser-key", "observability", "NEW_RELIC_BROWSER_KEY", lambda r: "NRJS-" + r.hex(19))
env_kind("sentry-dsn", "observability", "SENTRY_DSN", lambda r: r.hex(32),
         line="{var}=https://{s}@o{r}.ingest.us.sentry.io/5523188".replace("{r}", "411446"))
env_kind("sentry-org-token", "observability", "SENTRY_AUTH_TOKEN",
         lambda r: "sntrys_" + m.b64(m.json.dumps({"iat": 1700000000 + r.randrange(10**6), "url": "https://sentry.io",
                                                   "org": "acme-" + r.lowdig(5)}).encode()).rstrip("=") + "_" + r.b64(43))
env_kind("sentry-user-token", "observability", "SENTRY_TOKEN", lambda r: "sntryu_" + r.hex(64))
env_kind("grafana-service-account-token", "observability", "GRAFANA_TOKEN", lambda r: f"glsa_{r.b62(32)}_{r.hex(8)}")
env_kind("grafana-cloud-token", "observability", "GRAFANA_CLOUD_TOKEN",
         lambda r: "glc_" + m.b64(m.json.dumps({"o": r.dig(6), "n": "ci-deploy", "k": r.b62(24),
                                                "m": {"r": "prod-eu-west-2"}}).encode()))
env_kind("grafana-api-key", "observability", "GRAFANA_API_KEY",
         lambda r: m.b64(m.json.dumps({"k": r.b62(32), "n": "ci", "id": r.randrange(1, 99)}, separators=(",", ":")).encode()))
env_kind("dynatrace-token", "observability", "DT_API_TOKEN", lambda r: f"dt0c01.{r.updig(24)}.{r.updig(64)}")
env_kind("splunk-hec-token", "observability", "SPLUNK_HEC_TOKEN", lambda r: r.uuid().upper())
env_kind("rollbar-access-token", "observability", "ROLLBAR_ACCESS_TOKEN", lambda r: r.hex(32))

# --- package registries --------------------------------------------------------------------------
env_kind("npm-token", "package-registries", "NPM_TOKEN", lambda r: m.checksummed("npm_", r))
env_kind("npmrc-auth-token", "package-registries", "NPMRC", lambda r: r.uuid(),
         line="//registry.npmjs.org/:_authToken={s}", name="project.npmrc", env=False)
env_kind("npmrc-auth", "package-registries", "NPMRC", lambda r: m.basic("ci", r.b62(20)),
         line="registry=https://nexus.internal.corp/repository/npm/\n_auth={s}\nalways-auth=true", name="project.npmrc",
         env=False)
env_kind("pypi-token", "package-registries", "TWINE_PASSWORD", lambda r: "pypi-" + m.macaroon("pypi.org", r))
env_kind("pypi-test-token", "package-registries", "TEST_PYPI_PASSWORD", lambda r: "pypi-" + m.macaroon("test.pypi.org", r))
env_kind("rubygems-api-key", "package-registries", "GEM_HOST_API_KEY", lambda r: "rubygems_" + r.hex(48))
env_kind("nuget-api-key", "package-registries", "NUGET_API_KEY", lambda r: "oy2" + r.lowdig(43))
env_kind("docker-hub-token", "package-registries", "DOCKERHUB_TOKEN", lambda r: "dckr_pat_" + r.b64u(27))


@kind("docker-config-auth", "package-registries", name="registry-auth.json")
def _docker_auth(r: Rand) -> Plant:
    auth = m.basic("ci-bot", r.b62(20))
    return Plant(m.json.dumps({"auths": {"registry.internal.corp:5000": {"auth": auth}}}) + "\n", auth)


env_kind("artifactory-api-key", "package-registries", "ARTIFACTORY_API_KEY", lambda r: "AKCp" + r.b62(69))
env_kind("artifactory-reference-token", "package-registries", "JFROG_ACCESS_TOKEN", lambda r: "cmVmdGtu" + r.b62(56))
env_kind("crates-io-token", "package-registries", "CARGO_REGISTRY_TOKEN", lambda r: "cio" + r.b62(32))
env_kind("clojars-token", "package-registries", "CLOJARS_PASSWORD", lambda r: "CLOJARS_" + r.lowdig(60))

# --- payments ------------------------------------------------------------------------------------
env_kind("stripe-secret-key", "payments", "STRIPE_SECRET_KEY", lambda r: "sk_live_51" + r.b62(97))
env_kind("stripe-restricted-key", "payments", "STRIPE_RESTRICTED_KEY", lambda r: "rk_live_51" + r.b62(97))
env_kind("stripe-test-key", "payments", "STRIPE_TEST_KEY", lambda r: "sk_test_51" + r.b62(97))
env_kind("stripe-webhook-secret", "payments", "STRIPE_WEBHOOK_SECRET", lambda r: "whsec_" + r.b62(32))
env_kind("square-access-token", "payments", "SQUARE_ACCESS_TOKEN", lambda r: "EAAA" + r.b64u(60))
env_kind("square-oauth-secret", "payments", "SQUARE_APP_SECRET", lambda r: "sq0csp-" + r.b64u(43))
env_kind("braintree-access-token", "payments", "BRAINTREE_ACCESS_TOKEN",
         lambda r: f"access_token$production${r.lowdig(16)}${r.hex(32)}")
env_kind("braintree-sandbox-token", "payments", "BRAINTREE_SANDBOX_TOKEN",
         lambda r: f"access_token$sandbox${r.lowdig(16)}${r.hex(32)}")
env_kind("shopify-access-token", "payments", "SHOPIFY_ACCESS_TOKEN", lambda r: "shpat_" + r.hex(32))
env_kind("shopify-shared-secret", "payments", "SHOPIFY_API_SECRET", lambda r: "shpss_" + r.hex(32))
env_kind("plaid-access-token", "payments", "PLAID_ACCESS_TOKEN", lambda r: f"access-production-{r.uuid()}")
env_kind("flutterwave-secret-key", "payments", "FLW_SECRET_KEY", lambda r: f"FLWSECK-{r.hex(32)}-X")


# --- credential files (found by path and shape, whatever the value) -------------------------------
def file_kind(id: str, name: str, path: str, make: Callable[[Rand], Plant]) -> None:
    KINDS.append(Kind(id, "credential-files", make, name, path))


def _plain(text: str, secret: str) -> Plant:
    return Plant(text, secret)


file_kind("npmrc-credential", ".npmrc", "/root/.npmrc", lambda r: (lambda s: _plain(
    f"registry=https://npm.internal.corp/\n//npm.internal.corp/:username=ci\n//npm.internal.corp/:_password={s}\n", s))(
    m.b64(r.b62(18).encode())))
file_kind("npmrc-credential", ".yarnrc.yml", "/app/.yarnrc.yml", lambda r: (lambda s: _plain(
    f'npmRegistryServer: "https://npm.internal.corp"\nnpmAuthToken: {s}\n', s))(r.b64u(40)))
file_kind("pypirc-password", ".pypirc", "/root/.pypirc", lambda r: (lambda s: _plain(
    f"[distutils]\nindex-servers = internal\n\n[internal]\nrepository = https://pypi.internal.corp/\n"
    f"username = ci\npassword = {s}\n", s))(r.password(18)))
file_kind("docker-config-credential", "config.json", "/root/.docker/config.json", lambda r: (lambda s: _plain(
    m.json.dumps({"auths": {"registry.internal.corp": {"identitytoken": s}}}, indent=2) + "\n", s))(r.b64u(64)))
file_kind("docker-config-credential", "auth.json", "/run/containers/0/auth.json", lambda r: (lambda s: _plain(
    m.json.dumps({"auths": {"quay.io": {"auth": s}}}) + "\n", s))(m.basic("robot+ci", r.b62(32))))
file_kind("git-credentials-password", ".git-credentials", "/root/.git-credentials", lambda r: (lambda s: _plain(
    f"https://ci-bot:{s}@git.internal.corp\n", s))(r.b62(24)))
file_kind("aws-credentials-file", "credentials", "/root/.aws/credentials", lambda r: (lambda s: _plain(
    f"[ci]\naws_access_key_id = ASIA{r.chars(m.B32, 16)}\naws_session_token = {s}\nregion = eu-west-1\n", s))(
    r.b64(240)))
file_kind("kubeconfig-credential", "config", "/root/.kube/config", lambda r: (lambda s: _plain(
    "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://k8s.internal.corp:6443\n  name: prod\n"
    f"users:\n- name: ci\n  user:\n    token: {s}\n", s))(r.b64u(64)))
file_kind("netrc-credential", ".netrc", "/root/.netrc", lambda r: (lambda s: _plain(
    f"machine git.internal.corp\n  login ci\n  password {s}\n", s))(r.b62(22)))
file_kind("pgpass-password", ".pgpass", "/root/.pgpass", lambda r: (lambda s: _plain(
    f"db.internal.corp:5432:orders:app:{s}\n", s))(r.password(20).replace(":", "\\:")))  # `:` escaped, as libpq reads it
file_kind("shadow-password-hash", "shadow", "/etc/shadow", lambda r: (lambda s: _plain(
    f"root:*:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\ndeploy:{s}:19701:0:99999:7:::\n", s))(
    f"!$6${r.b62(16)}${r.chars(m.B62 + './', 86)}"))
file_kind("java-keystore", "keystore.jks", "/app/config/keystore.jks", lambda r: (lambda b: Plant(b, b))(m.jks(r)))
file_kind("pkcs12-keystore", "client.p12", "/app/config/client.p12", lambda r: (lambda b: Plant(b, b))(m.pkcs12(r)))
file_kind("der-private-key", "server.key", "/app/config/server.key", lambda r: (lambda b: Plant(b, b))(m.pkcs8_der(r)))



def _pyc(r: Rand) -> Plant:
    """A real `.pyc` whose token constant sits right before a `None` and a tuple (`...N)`): as raw
    bytes the framing glues onto it; the marshal reader sees it alone."""
    import importlib.util
    import marshal

    s = m.checksummed("ghp_", r)
    code = compile(f'TOKENS = ("{s}", None)\nDEFAULT = ("{s}x", ("a",))\n', "settings.py", "exec")
    return Plant(importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code), s)


def structured_kind(id: str, category: str, name: str, path: str, make: Callable[[Rand], Plant]) -> None:
    """A file read by its structure (bytecode, manifests, dumps): the secret it reports may be
    decoded, not a span of the file."""
    KINDS.append(Kind(id, category, make, name, path))


structured_kind("github-pat", "code-hosting", "settings.cpython-311.pyc", "/app/__pycache__/settings.cpython-311.pyc", _pyc)
structured_kind("kubernetes-secret", "structured-files", "secret.yaml", "/deploy/k8s/secret.yaml", lambda r: (lambda s: _plain(
    "---\n# Source: shop/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: shop\n"
    f"type: Opaque\ndata:\n  {r.lowdig(6)}: {m.b64(s.encode())}\n", s))(r.password(20)))
structured_kind("kubernetes-secret", "structured-files", "secrets.json", "/deploy/k8s/secrets.json", lambda r: (lambda s: _plain(
    m.json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"},
                  "stringData": {"settings": s}}, indent=2) + "\n", s))(r.b62(24)))
structured_kind("sql-dump-credential", "structured-files", "db.sql", "/backup/db.sql", lambda r: (lambda s: _plain(
    "--\n-- PostgreSQL database dump\n--\n\nCOPY public.integrations (id, name, api_token, created_at) FROM stdin;\n"
    f"1\tbilling\t{s}\t2024-03-01 10:00:00\n\\.\n", s))(r.b64u(32)))
structured_kind("sql-dump-credential", "structured-files", "seed.sql", "/docker-entrypoint-initdb.d/seed.sql", lambda r: (lambda s: _plain(
    "CREATE TABLE `users` (\n  `id` int NOT NULL,\n  `login` varchar(64),\n  `passwd` varchar(128),\n"
    f"  PRIMARY KEY (`id`)\n);\nINSERT INTO `users` VALUES (1,'svc','{s}');\n", s))(r.password(18)))


CATEGORIES = sorted({k.category for k in KINDS})


# --- every other rule: planted from its own examples -----------------------------------------------
def _example_kinds() -> None:
    """A rule that no kind above plants (most provider rules, written from the providers'
    documented formats) is planted from its first positive example, in every location: the
    secret is what the rule reports in that example, and an `export NAME=value` example is also
    an ENV value and a build arg (once per NAME: a second plant under `XNAME` would hide the
    provider's name)."""
    import re

    from scanner.detectors.rules import load_rules
    from scanner.detectors.signature import accept

    written, names = {k.id for k in KINDS}, set()
    for rule in load_rules().rules:
        if rule.id in written or not rule.positives:
            continue
        text = rule.positives[0]
        secret = next(m.group("secret") for m in rule.pattern.finditer(text.encode())
                      if accept(rule, m.group("secret"))).decode()
        assign = re.fullmatch(r"export ([A-Z][A-Z0-9_]*)=(\S+)", text)
        env = None
        if assign and assign.group(2) == secret and assign.group(1) not in names:
            names.add(assign.group(1))
            env = (assign.group(1), secret)
        KINDS.append(Kind(rule.id, rule.family, lambda r, t=text, s=secret, e=env: Plant(t + "\n", s, e)))


_example_kinds()
