"""Classes of values that look like secrets and are not, with the built-in rules: documentation
user:password pairs, stored hashes outside the hash rules, weak words in disguise, regex and path
fragments. Each class next to the real value of the same shape that is still reported."""
from __future__ import annotations

import pytest

from scanner.detectors.entropy import EntropyDetector
from scanner.detectors.heuristics import is_example_credential, looks_like_hash, looks_like_text
from scanner.detectors.rules import load_rules
from scanner.detectors.signature import SignatureDetector

SHA512_CRYPT = "$6$/bQCntzQ7VrgVcFa$VaMkmevkY1dqrx8neaenUDlVU.6L/.ojRbrnI4ID.yBHU6XON1cB422scCiXu1qMOVGF3U.wq8uG3VHI3GwP1"
BCRYPT = "$2b$12$ujYVRD9v9z87lpvLqeWNuOFDI4QzSSYHoRyYydW6XK4.kgqfwOXzO"
ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
DJANGO = "pbkdf2_sha256$600000$Ew8Lp0Tz3KqR$Xe2Vh0Fj7kQmZpWcY4aLbN9rTsUd1GoI5yHvKxBnMq8="


@pytest.fixture(scope="module")
def detectors():
    sig = SignatureDetector(load_rules())
    return sig, EntropyDetector(sig)


def found(detectors, text: str, path: str = "/app/config.yaml") -> set[tuple[str, bytes]]:
    return {(m.rule_id, m.secret) for d in detectors for m in d.scan(text.encode(), path)}


@pytest.mark.parametrize("value", [SHA512_CRYPT, BCRYPT, ARGON2, DJANGO, "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
                                   "{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="])
def test_stored_hash_shapes(value):
    assert looks_like_hash(value.encode())


@pytest.mark.parametrize("value", ["Zr7Kq2Wm9Xt4Lp6V", "$ecretXk29vLq0Tz", "sk_live_x$2b$abc"])
def test_values_that_are_not_hashes(value):
    assert not looks_like_hash(value.encode())


@pytest.mark.parametrize("value", [SHA512_CRYPT, BCRYPT, ARGON2, DJANGO])
def test_a_hash_assigned_to_a_password_name_is_no_password(detectors, value):
    assert found(detectors, f"password: '{value}'\n") == set()
    assert found(detectors, f"DB_PASSWORD={value}\n", "/app/.env") == set()


def test_the_password_hash_rule_still_reports_shadow_style_hashes(detectors):
    assert ("password-hash", SHA512_CRYPT.encode()) in found(detectors, f"deploy:{SHA512_CRYPT}:19000:0:99999:7:::\n",
                                                            "/srv/passwd.txt")


@pytest.mark.parametrize("value", ["03#pa33w0rd", "p@$$w*rd!", "S3cr#tXy", "adm1n_pa55w0rd"])
def test_weak_words_with_letters_swapped_for_symbols(value):
    assert looks_like_text(value.encode())


@pytest.mark.parametrize("value", ["xK9#mQ2!vL", "Zr7Kq2Wm9Xt4Lp6V", "pX9#w2rQ"])
def test_random_passwords_are_not_text(value):
    assert not looks_like_text(value.encode())


@pytest.mark.parametrize("user, password", [("scott", "tiger"), ("scott", "tiger^5HHH"), ("Scott", "Tiger1"),
                                            ("postgres", "postgres"), ("foo", "bar"), ("user", "password"),
                                            ("admin", "<password>"), ("u", "changeme")])
def test_documentation_pairs(user, password):
    assert is_example_credential(user.encode(), password.encode())


@pytest.mark.parametrize("user, password", [("scott", "Xk2j9dk2Lq"), ("app", "VRjuM2Fhf1ZXJ2oQ"), ("tiger", "scott7Hq2")])
def test_real_looking_pairs(user, password):
    assert not is_example_credential(user.encode(), password.encode())


@pytest.mark.parametrize("url", ["postgresql://scott:tiger@localhost/test", "mysql+mysqldb://scott:tiger@hostname/dbname",
                                 "mssql+pyodbc://scott:tiger^5HHH@mssql2017:1433/test",
                                 "oracle+oracledb://scott:tiger@127.0.0.1:1521/?service_name=FREEPDB1",
                                 "redis://default:default@cache:6379/0", "https://user:pass@proxy.corp:3128"])
def test_documentation_urls_are_not_reported(detectors, url):
    assert found(detectors, f'engine = create_engine("{url}")\n', "/app/db.py") == set()


@pytest.mark.parametrize("url, secret", [("postgresql://scott:Xk2j9dk2Lq7@db.internal/app", "Xk2j9dk2Lq7"),
                                         ("mssql+pyodbc://app:VRjuM2Fhf1ZX@sql01:1433/shop", "VRjuM2Fhf1ZX")])
def test_real_passwords_in_urls_are_reported(detectors, url, secret):
    assert secret.encode() in {s for _, s in found(detectors, f'engine = create_engine("{url}")\n', "/app/db.py")}


@pytest.mark.parametrize("line", ['"EventPattern": {"secret": "events-webhook(-preprod)?[!/].+"}',
                                  'client_secret = "(?:[A-Za-z0-9]{32})+"',
                                  '"secret": "timestream-influxdb/"'])
def test_regexes_and_path_prefixes_are_not_secrets(detectors, line):
    assert found(detectors, line + "\n", "/app/service.json") == set()


def test_a_secret_ending_in_a_slash_is_still_reported(detectors):
    assert found(detectors, '"secret": "q8Zr3vLx0Tk7Wm2Yc9Np4Hs6Jd1/"\n', "/app/service.json") != set()


def test_base64_of_a_placeholder_is_a_placeholder(detectors):
    from scanner.detectors.heuristics import encodes_placeholder

    assert encodes_placeholder(b"Y2hhbmdlbWU=")  # changeme
    assert not encodes_placeholder(b"VnE3clQya0x4OVdt")  # Vq7rT2kLx9Wm
    assert found(detectors, "data:\n  password: Y2hhbmdlbWU=\n", "/deploy/secret.yaml") == set()


@pytest.mark.parametrize("line", ['SECURITY_TOKEN_HEADER = "x-amz-security-token"', '"token": "X-Auth-Token",',
                                  'access_token = "/oauth/access_token"', 'token: /v1/token', '"token": "/v1/token"',
                                  'secret_key: /api/v2/secret/keys', "password = '%(password)s'", "password: $DB_PASS",
                                  "token: ${{ secrets.TOKEN }}", "password = 'xxx'", 'DB_PASSWORD="{{ var }}"',
                                  '"ApiKeyError": ".exceptions",', "const DATA_API_KEY = '.data-api'", "# e.g. sqla+mysql://root:masterkey@localhost/"])
@pytest.mark.parametrize("path", ["/app/settings.py", "/app/config.yaml", "/app/.env"])
def test_header_names_url_paths_and_references_are_not_secrets(detectors, line, path):
    assert found(detectors, line + "\n", path) == set()


@pytest.mark.parametrize("value", ["2kjshdfp92i34asdasd", "sdf0o9823sjdfsdf", "lsdajfh923874"])
def test_home_row_mashes_are_typed_examples(detectors, value):
    from scanner.detectors.heuristics import looks_typed

    assert looks_typed(value.encode())
    assert found(detectors, f"client_secret='{value}'\n", "/app/oauth.py") == set()


def test_a_random_lower_case_secret_is_not_a_mash(detectors):
    from scanner.detectors.heuristics import looks_typed

    assert not looks_typed(b"q8zr3vlx0tk7wm2yc9np")
    assert found(detectors, "client_secret='q8zr3vlx0tk7wm2yc9np'\n", "/app/oauth.py") != set()


def test_percent_encoded_placeholder_in_a_url(detectors):
    assert is_example_credential(b"user", b"P%40SSWORD")
    assert found(detectors, 'url = "ws://user:P%40SSWORD@localhost/path"\n', "/app/test_url.py") == set()


@pytest.mark.parametrize("value", ["Cisco#123", "cisco@123", "maglev123", "catalyst@123", "privacy123"])
def test_a_word_and_a_count_is_an_example_password(detectors, value):
    from scanner.detectors.heuristics import looks_typed

    assert looks_typed(value.encode())
    assert found(detectors, f"  password: '{value}'\n", "/playbooks/site.yml") == set()


@pytest.mark.parametrize("value", ["Xk9mQ2vL123", "Deploy2024x7Q", "hY3nB8vQz1Kc"])
def test_real_looking_passwords_with_digits_are_still_reported(detectors, value):
    assert found(detectors, f"  password: '{value}'\n", "/playbooks/site.yml") != set()
