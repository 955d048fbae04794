"""knevents hooks against stand-ins of each provider's REST API (tests/fixtures/provider_api.py).

For every provider: ``apply`` creates once and a second ``apply`` changes nothing; ``delete`` removes exactly
the hooks ``apply`` made (a hook someone else made stays); bad credentials give an error naming the provider and
the repository, never the token; ``--dry-run`` prints the calls with secrets masked and sends nothing. The
official Python clients (PyGithub, python-gitlab, stripe) are pointed at the same stand-ins, so the stand-ins
answer the way the providers' own SDKs expect.

Every list is paged: with more foreign hooks than fit one page, knevents still finds its own (a second ``apply``
makes no duplicate, ``delete`` removes it), stops on a server that announces a next page forever, and never
follows Bitbucket Cloud's ``next`` link with its credentials to another host.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from knevents import hooks
from knevents.hooks import base
from knevents.secrets import SecretResolver, env_name
from knevents.settings import SecretSettings

from tests.fixtures.provider_api import ProviderApi
from tests.unit.sources_core.helpers import event_source

TOKEN = "tok-very-secret-123"
HOOK_SECRET = "hook-secret-456"
URL = "https://events.example.com"
HOOK = {"endpoint": "/push", "port": "12000", "method": "POST", "url": "http://ignored.example"}


def _spec(kind: str, api: str) -> dict[str, Any]:
    sel = {"name": "creds", "key": "token"}
    secret = {"name": "creds", "key": "secret"}
    return {
        "github": {"repositories": [{"owner": "argoproj", "names": ["argo-events", "argo-workflows"]}],
                   "events": ["push", "pull_request"], "apiToken": sel, "webhookSecret": secret,
                   "githubBaseURL": api, "githubUploadURL": api, "active": True, "contentType": "json"},
        "gitlab": {"projects": ["whynowy/test", "3"], "events": ["PushEvents", "TagPushEvents"],
                   "accessToken": sel, "secretToken": secret, "gitlabBaseURL": api, "enableSSLVerification": True},
        "bitbucket": {"repositories": [{"owner": "own", "repositorySlug": "r1"}, {"owner": "own",
                                                                                 "repositorySlug": "r2"}],
                      "events": ["repo:push"], "auth": {"oauthToken": sel}, "webhookSecret": secret},
        "bitbucketserver": {"repositories": [{"projectKey": "P1", "repositorySlug": "r1"}], "projects": ["P2"],
                            "events": ["repo:refs_changed"], "accessToken": sel, "webhookSecret": secret,
                            "bitbucketserverBaseURL": api + "/rest"},
        "gerrit": {"projects": ["argo-webhook", "argo/webhook"], "hookName": "argo-webhook-example",
                   "events": ["patchset-created"], "gerritBaseURL": api + "/",
                   "auth": {"username": {"name": "creds", "key": "user"}, "password": sel}},
        "stripe": {"createWebhook": True, "apiKey": sel, "eventFilter": ["charge.failed"]},
    }[kind]


SCOPES = {
    "github": {"repos/argoproj/argo-events", "repos/argoproj/argo-workflows"},
    "gitlab": {"projects/whynowy/test", "projects/3"},
    "bitbucket": {"repositories/own/r1", "repositories/own/r2"},
    "bitbucketserver": {"projects/P1/repos/r1", "projects/P2/repos/a", "projects/P2/repos/b"},
    "gerrit": {"argo-webhook", "argo/webhook"},
    "stripe": set(),
}
CREDENTIAL = {"bitbucket": TOKEN, "gerrit": f"admin:{TOKEN}"}
CREATE = {"gerrit": "PUT"}
EXPECTED_CREATES = {"github": 2, "gitlab": 2, "bitbucket": 2, "bitbucketserver": 3, "gerrit": 2, "stripe": 1}


@pytest.fixture(params=sorted(SCOPES))
def provider(request: pytest.FixtureRequest) -> Iterator[tuple[str, ProviderApi]]:
    kind = str(request.param)
    api = ProviderApi(kind, CREDENTIAL.get(kind, TOKEN), set(SCOPES[kind]))
    yield kind, api
    api.close()


def _setup(kind: str, api: ProviderApi, token: str = TOKEN, dry_run: bool = False,
           out: list[str] | None = None) -> tuple[base.Target, base.Context]:
    es = event_source({kind: {"example": {**_spec(kind, api.url), "webhook": HOOK}}})
    (target,) = hooks.targets([es], URL)
    env = {env_name("SECRET", "creds", "token"): token, env_name("SECRET", "creds", "secret"): HOOK_SECRET,
           env_name("SECRET", "creds", "user"): "admin"}
    secrets = SecretResolver(SecretSettings(secrets_dir="/nonexistent", configmaps_dir="/nonexistent"), env)
    lines = out if out is not None else []
    ctx = base.Context(secrets, dry_run=dry_run, out=lines.append, api_bases={kind: api.url})
    return target, ctx


def test_apply_twice_creates_once(provider: tuple[str, ProviderApi]) -> None:
    kind, api = provider
    target, ctx = _setup(kind, api)
    first = hooks.apply(target, ctx)
    assert [o.action for o in first] == ["created"] * EXPECTED_CREATES[kind]
    creates = len(api.mutations(CREATE.get(kind, "POST")))
    assert creates == EXPECTED_CREATES[kind]
    assert all((h["config"]["url"] if kind == "github" else h["url"]) == f"{URL}/push" for h in api.all_hooks())
    second = hooks.apply(target, ctx)
    assert {o.action for o in second} == {"unchanged"}
    assert len([r for r in api.requests if r.method != "GET"]) == creates  # nothing but reads the second time


def test_delete_removes_exactly_what_apply_made(provider: tuple[str, ProviderApi]) -> None:
    kind, api = provider
    target, ctx = _setup(kind, api)
    hooks.apply(target, ctx)
    foreign = _foreign(kind, api)
    removed = hooks.delete(target, ctx)
    assert [o.action for o in removed] == ["deleted"] * EXPECTED_CREATES[kind]
    assert api.all_hooks() == [foreign]
    assert {o.action for o in hooks.delete(target, ctx)} == {"absent"}


def _foreign(kind: str, api: ProviderApi) -> dict[str, Any]:
    """A hook somebody else made, on one of the same scopes (another URL, or another Gerrit remote name)."""
    scope = sorted(SCOPES[kind])[0] if SCOPES[kind] else "account"
    hook = {"id": 999, "uuid": "{other}", "url": "https://other.example/hook", "events": ["push"], "active": True,
            "config": {"url": "https://other.example/hook"}, "enabled_events": ["*"]}
    api.hooks.setdefault(scope, {})["other"] = hook
    return hook


def test_bad_credentials_name_provider_and_repository_never_the_token(provider: tuple[str, ProviderApi]) -> None:
    kind, api = provider
    target, ctx = _setup(kind, api, token="wrong-token-value-789")
    with pytest.raises(base.HookError) as info:
        hooks.apply(target, ctx)
    message = str(info.value)
    assert kind in message and "bad credentials" in message
    assert "wrong-token-value-789" not in message and TOKEN not in message
    if kind in ("github", "gitlab", "bitbucket"):
        assert sorted(SCOPES[kind])[0].split("/")[-1] in message or "whynowy" in message


def test_dry_run_prints_masked_calls_and_sends_nothing(provider: tuple[str, ProviderApi]) -> None:
    kind, api = provider
    lines: list[str] = []
    target, ctx = _setup(kind, api, dry_run=True, out=lines)
    outcomes = hooks.apply(target, ctx)
    assert api.requests == [] and {o.action for o in outcomes} == {"planned"}
    text = "\n".join(lines)
    assert "[dry-run]" in text and f"{URL}/push" in text
    assert TOKEN not in text and HOOK_SECRET not in text
    assert ("POST" in text) or ("PUT" in text)


def test_pygithub_sees_the_hook_knevents_made_and_knevents_adopts_one_pygithub_made() -> None:
    from github import Auth, Github

    api = ProviderApi("github", TOKEN, set(SCOPES["github"]))
    try:
        client = Github(base_url=api.url + "/api/v3", auth=Auth.Token(TOKEN))
        repo = client.get_repo("argoproj/argo-workflows")
        repo.create_hook("web", {"url": f"{URL}/push", "content_type": "json", "insecure_ssl": "0"},
                         ["push", "pull_request"], active=True)
        target, ctx = _setup("github", api)
        actions = sorted(o.action for o in hooks.apply(target, ctx))
        assert actions == ["created", "unchanged"]
        hook_urls = [h.config["url"] for h in client.get_repo("argoproj/argo-events").get_hooks()]
        assert hook_urls == [f"{URL}/push"]
    finally:
        api.close()


def test_python_gitlab_reads_the_hooks_knevents_made() -> None:
    import gitlab

    api = ProviderApi("gitlab", TOKEN, set(SCOPES["gitlab"]))
    try:
        target, ctx = _setup("gitlab", api)
        hooks.apply(target, ctx)
        client = gitlab.Gitlab(api.url, private_token=TOKEN)
        (hook,) = client.projects.get("whynowy/test", lazy=True).hooks.list(get_all=True)
        assert hook.url == f"{URL}/push" and hook.push_events and hook.tag_push_events
        assert not hook.merge_requests_events and hook.enable_ssl_verification
        made = client.projects.get("3", lazy=True).hooks.create({"url": "https://other.example/x"})
        assert made.push_events  # GitLab's default, which is why knevents sends every option
    finally:
        api.close()


def test_stripe_library_lists_the_endpoint_knevents_made() -> None:
    import stripe

    api = ProviderApi("stripe", TOKEN)
    try:
        target, ctx = _setup("stripe", api)
        hooks.apply(target, ctx)
        client = stripe.StripeClient(TOKEN, base_addresses={"api": api.url})
        (endpoint,) = client.v1.webhook_endpoints.list().data
        assert endpoint.url == f"{URL}/push" and endpoint.enabled_events == ["charge.failed"]
        client.v1.webhook_endpoints.update(endpoint.id, {"enabled_events": ["charge.succeeded"]})
        assert [o.action for o in hooks.apply(target, ctx)] == ["updated"]
    finally:
        api.close()


def test_dry_run_needs_no_credentials() -> None:
    api = ProviderApi("gitlab", TOKEN, set(SCOPES["gitlab"]))
    try:
        lines: list[str] = []
        target, ctx = _setup("gitlab", api, dry_run=True, out=lines)
        ctx.secrets = SecretResolver(SecretSettings(secrets_dir="/nonexistent", configmaps_dir="/nonexistent"), {})
        assert {o.action for o in hooks.apply(target, ctx)} == {"planned"}
        assert '"token": "***"' in "\n".join(lines) and api.requests == []
    finally:
        api.close()


def test_an_entry_without_a_public_url_is_an_error_for_the_cli_and_skipped_by_the_runner() -> None:
    from knevents import errors

    es = event_source({"gitlab": {"example": {**_spec("gitlab", "http://x"),
                                              "webhook": {**HOOK, "url": None}}}})
    with pytest.raises(errors.SpecError, match="no public URL"):
        list(hooks.targets([es]))
    skipped: list[str] = []
    assert list(hooks.targets([es], on_missing_url=skipped.append)) == []
    assert "spec.gitlab.example" in skipped[0]
    assert [t.url for t in hooks.targets([es], "https://given.example")] == ["https://given.example/push"]


PAGED = sorted(set(SCOPES) - {"gerrit"})  # Gerrit lists a project's remotes as one map
NEWEST_FIRST = {"stripe"}
FOREIGN = 120  # more than any provider's first page (100 at most)


@pytest.fixture(params=PAGED)
def paged(request: pytest.FixtureRequest) -> Iterator[tuple[str, ProviderApi]]:
    kind = str(request.param)
    api = ProviderApi(kind, CREDENTIAL.get(kind, TOKEN), set(SCOPES[kind]))
    yield kind, api
    api.close()


def _crowd(kind: str, api: ProviderApi, count: int = FOREIGN) -> int:
    """``count`` hooks somebody else made on every scope; how many were added in all."""
    for scope in sorted(SCOPES[kind]) or ["account"]:
        for i in range(count):
            ident: Any = f"we_foreign{i:04d}" if kind == "stripe" else 100_000 + i
            url = f"https://other.example/{i}"
            hook = {"id": ident, "uuid": f"{{foreign-{i}}}", "url": url, "config": {"url": url}, "events": ["push"],
                    "active": True, "enabled_events": ["*"]}
            api.hooks.setdefault(scope, {})[hook["uuid"] if kind == "bitbucket" else str(ident)] = hook
    return count * max(1, len(SCOPES[kind]))


def _ours_listed_last(kind: str, api: ProviderApi, target: base.Target, ctx: base.Context) -> int:
    """Apply among FOREIGN hooks on every scope, ours listed after them; how many foreign hooks there are."""
    foreign = 0 if kind in NEWEST_FIRST else _crowd(kind, api)  # oldest first: ours, made later, is listed last
    assert [o.action for o in hooks.apply(target, ctx)] == ["created"] * EXPECTED_CREATES[kind]
    return _crowd(kind, api) if kind in NEWEST_FIRST else foreign  # newest first: the newer crowd comes before ours


def test_a_hook_past_the_first_page_is_found_not_made_twice(paged: tuple[str, ProviderApi]) -> None:
    kind, api = paged
    target, ctx = _setup(kind, api)
    foreign = _ours_listed_last(kind, api, target, ctx)
    assert {o.action for o in hooks.apply(target, ctx)} == {"unchanged"}
    assert len(api.mutations(CREATE.get(kind, "POST"))) == EXPECTED_CREATES[kind]
    assert len(api.all_hooks()) == foreign + EXPECTED_CREATES[kind]


def test_delete_finds_a_hook_past_the_first_page(paged: tuple[str, ProviderApi]) -> None:
    kind, api = paged
    target, ctx = _setup(kind, api)
    foreign = _ours_listed_last(kind, api, target, ctx)
    assert [o.action for o in hooks.delete(target, ctx)] == ["deleted"] * EXPECTED_CREATES[kind]
    assert len(api.all_hooks()) == foreign
    assert all("other.example" in h["url"] for h in api.all_hooks())


def test_next_page_pointers_are_read_as_documented() -> None:
    from knevents.hooks import gitlab

    link = ('<https://gitlab.example/api/v4/projects/3/hooks?page=1>; rel="first", '
            '<https://gitlab.example/api/v4/projects/3/hooks?page=3>; rel="next", <https://x/?page=9>; rel="last"')
    assert base.link_next({"link": link}) == "https://gitlab.example/api/v4/projects/3/hooks?page=3"
    assert base.link_next({"link": '<https://x/?page=1>; rel="prev"'}) is None
    assert gitlab._next_page([], {"x-next-page": "4"}, {"per_page": "100"}) == {"per_page": "100", "page": "4"}
    assert gitlab._next_page([], {"x-next-page": ""}, {"per_page": "100"}) is None


def test_a_list_that_never_ends_is_an_error_not_a_hang(paged: tuple[str, ProviderApi]) -> None:
    kind, api = paged
    _crowd(kind, api, 1)
    api.endless = True
    target, ctx = _setup(kind, api)
    with pytest.raises(base.HookError, match=rf"{kind} .*next page after \d+ pages"):
        hooks.apply(target, ctx)
    assert len(api.requests) == base.MAX_PAGES and not api.mutations(CREATE.get(kind, "POST"))


def test_bitbucket_next_page_on_another_host_is_refused_and_gets_no_token() -> None:
    api = ProviderApi("bitbucket", TOKEN, set(SCOPES["bitbucket"]))
    elsewhere = ProviderApi("bitbucket", TOKEN, set(SCOPES["bitbucket"]))
    try:
        api.next_base = elsewhere.url.replace("127.0.0.1", "localhost")
        _crowd("bitbucket", api)
        target, ctx = _setup("bitbucket", api)
        with pytest.raises(base.HookError, match="another host") as info:
            hooks.apply(target, ctx)
        assert TOKEN not in str(info.value)
        assert elsewhere.requests == [] and not api.mutations("POST")
    finally:
        api.close()
        elsewhere.close()


def test_bitbucketserver_follows_the_pages_of_a_projects_repositories() -> None:
    api = ProviderApi("bitbucketserver", TOKEN, set(SCOPES["bitbucketserver"]), page_cap=1)  # a server capping at 1
    try:
        target, ctx = _setup("bitbucketserver", api)
        assert [o.action for o in hooks.apply(target, ctx)] == ["created"] * 3
        assert sorted(api.hooks) == sorted(SCOPES["bitbucketserver"])
    finally:
        api.close()


def test_official_clients_page_through_the_stand_ins() -> None:
    import gitlab
    import stripe
    from github import Auth, Github

    apis = {kind: ProviderApi(kind, TOKEN, set(SCOPES[kind])) for kind in ("github", "gitlab", "stripe")}
    try:
        added = {kind: _crowd(kind, api) // max(1, len(SCOPES[kind])) for kind, api in apis.items()}
        repo = Github(base_url=apis["github"].url + "/api/v3", auth=Auth.Token(TOKEN)).get_repo("argoproj/argo-events")
        assert len(list(repo.get_hooks())) == added["github"]  # 30 a page
        project = gitlab.Gitlab(apis["gitlab"].url, private_token=TOKEN).projects.get("3", lazy=True)
        assert len(project.hooks.list(get_all=True)) == added["gitlab"]  # 20 a page
        client = stripe.StripeClient(TOKEN, base_addresses={"api": apis["stripe"].url})
        listed = [e.id for e in client.v1.webhook_endpoints.list().auto_paging_iter()]  # 10 a page, newest first
        assert listed == [f"we_foreign{i:04d}" for i in reversed(range(added["stripe"]))]
        assert len([r for r in apis["github"].requests if r.method == "GET"]) > 4
    finally:
        for api in apis.values():
            api.close()
