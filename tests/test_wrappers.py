"""The wrappers beyond their harness cases: identities with the base family, accuracy at
the edges (tiny rates, deep tails, pi = 0 and 1), which families each wrapper accepts,
every applicable registered family wrapped against its own case's reference, statsmodels'
implementations of the same likelihoods (ZeroInflatedPoisson, TruncatedLFPoisson,
HurdleCountModel) at their estimates, and fits against statsmodels on its bundled data
(randhie for the count models, fair for the Tobit): params 1e-6, standard errors 1e-5
relative."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import _harness as H
import nllax
from cases import CASES, _wrapped as W

sm = pytest.importorskip("statsmodels.api")

EPS64 = H.EPS64
PARAM_RTOL, SE_RTOL = 1e-6, 1e-5  # the tolerances against statsmodels

ZIP = nllax.zero_inflated(nllax.poisson)
HP = nllax.hurdle(nllax.poisson)
ZTP = nllax.zero_truncated(nllax.poisson)
TOBIT = nllax.censored(nllax.gaussian)


# ----------------------------------------------------------------------------------------
# construction


def test_wrappers_accept_the_right_families_and_cache():
    assert nllax.zero_inflated(nllax.poisson) is ZIP
    assert nllax.truncated(nllax.poisson, lower=1) is ZTP
    assert nllax.zero_inflated(nllax.poisson.family) is ZIP  # the Family object works too
    for bad in (nllax.bernoulli, nllax.categorical, nllax.ordinal, nllax.gaussian):
        for w in (nllax.zero_inflated, nllax.hurdle, nllax.zero_truncated):
            with pytest.raises(TypeError, match="not a count family"):
                w(bad)
    for bad in (nllax.poisson, nllax.bernoulli, nllax.categorical):
        with pytest.raises(TypeError, match="log_cdf"):
            nllax.censored(bad)
    with pytest.raises(TypeError, match="already a wrapped family"):
        nllax.hurdle(ZIP)
    with pytest.raises(TypeError, match="family module"):
        nllax.censored("gaussian")
    for lower in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="lower"):
            nllax.truncated(nllax.poisson, lower=lower)
    assert "zero_inflated_poisson" not in nllax.families  # built on demand, not registered
    with pytest.raises(ValueError, match="exactly one of `zero_logits=` or `zero_probs=`"):
        ZIP.log_prob(jnp.zeros(3), rate=1.0)


WRAPPERS = {"zero_inflated": (nllax.zero_inflated, W.zero_inflated_case),
            "hurdle": (nllax.hurdle, W.hurdle_case),
            "zero_truncated": (nllax.zero_truncated, None),
            "censored": (nllax.censored, W.censored_case)}


def test_every_applicable_registered_family_is_wrapped_against_its_reference(x64):
    # Every registered family a wrapper accepts, also those without a wrapped case of their
    # own (so a family is covered as soon as it is registered with its case): the wrapped
    # log_prob against the base case's reference composed by the wrapper's definition, in
    # float64, with finite gradients. The wrapped cases in tests/cases/ run the whole
    # harness on the instances they name; those are not repeated here.
    from nllax._wrappers import _is_count

    covered = []
    for name, mod in nllax.families.items():
        base = CASES[name]
        for wname, (wrap, make) in WRAPPERS.items():
            ok = (mod.family.log_cdf is not None) if wname == "censored" else _is_count(
                mod.family)
            if not ok:
                with pytest.raises(TypeError):
                    wrap(mod)
                continue
            wrapped = wrap(mod)
            covered.append(wrapped.family.name)
            if wrapped.family.name in CASES:
                continue
            if wname == "zero_truncated":
                case = W.truncated_case(wrapped, base, 1, normalisation=(), k_max=1)
            else:
                case = make(wrapped, base, normalisation=())
            data, params, kw = H.inputs(case, case.parametrisations()[0], n=8)
            k = {a: jnp.asarray(v) for a, v in kw.items()}
            names = case.float_params(kw)
            x0 = np.concatenate([np.ravel(kw[n]) for n in names])
            u = np.random.default_rng(0).normal(size=(2, x0.size))
            got, g, fv = map(np.asarray, _value_grad_and_steps(case, names)(
                jnp.asarray(data), k, jnp.asarray(u)))
            np.testing.assert_allclose(got, case.reference(data, **params),
                                       rtol=max(case.rtol64, 1e-12), err_msg=case.name)
            # the NLL's reverse-mode gradient against central differences of the NLL
            # (minus the sum of the log_prob just checked) in two random directions, with
            # check_grads' float64 tolerance (atol = rtol = 1e-5) as before: the step 1e-5
            # leaves truncation ~ 1e-10 |f^(3)| and rounding ~ eps64 |f| / 1e-5 ~ 2e-11 |f|
            fd = (fv[0] - fv[1]) / (2 * _FD_EPS)
            np.testing.assert_allclose(u @ g, fd, rtol=1e-5, atol=1e-5, err_msg=case.name)
    assert {"zero_inflated_poisson", "hurdle_poisson", "zero_truncated_poisson",
            "censored_gaussian", "censored_logistic", "censored_laplace"} <= set(covered)


_FD_EPS = 1e-5


def _value_grad_and_steps(case, names):
    """One compiled program per wrapped family (each is built once, in the loop above):
    ``log_prob`` at ``x0`` and at ``x0 +- eps u`` for each direction ``u`` (one vmapped
    evaluation of the five points; the NLL at a point is minus the sum of its
    ``log_prob``), and the gradient of the NLL over the float parameters ``names``
    (flattened). (Was: a jit of log_prob and ``check_grads``, which compiles the
    function, its VJP's two halves and eager steps: 93 compiles and 43 s of CPU for this
    test, measured with bench/test_time.py; then one program with three traced copies of
    the family's body: log_prob, the NLL under the gradient and the NLL at the four
    points.)"""

    def run(d, k, u):
        sizes = [k[n].size for n in names]
        x0 = jnp.concatenate([jnp.ravel(k[n]) for n in names])

        def kwargs(x):
            parts = jnp.split(x, np.cumsum(sizes)[:-1])
            return dict(k, **{n: p.reshape(k[n].shape) for p, n in zip(parts, names)})

        def nll(x):
            return jnp.sum(H.call(case, "nll", d, kwargs(x)))

        pts = jnp.concatenate([x0[None], x0 + _FD_EPS * u, x0 - _FD_EPS * u])
        lp = jax.vmap(lambda x: H.call(case, "log_prob", d, kwargs(x)))(pts)
        fv = -jnp.sum(lp[1:], axis=-1).reshape(2, u.shape[0])
        return lp[0], jax.grad(nll)(x0), fv

    return jax.jit(run)


# ----------------------------------------------------------------------------------------
# identities and edges


@jax.jit
def _identities(k, eta, z, y):
    return {
        "base": nllax.poisson.log_prob(k, log_rate=eta),
        "zip_pi0": ZIP.log_prob(k, log_rate=eta, zero_probs=0.0),
        "zip_logit_inf": ZIP.log_prob(k, log_rate=eta, zero_logits=-jnp.inf),
        "hurdle_f0": HP.log_prob(k, log_rate=eta, zero_probs=jnp.exp(-jnp.exp(eta))),
        "hurdle": HP.log_prob(k, log_rate=eta, zero_logits=z),
        "ztp": ZTP.log_prob(jnp.maximum(k, 1.0), log_rate=eta) + jax.nn.log_sigmoid(-z),
        "gauss": nllax.gaussian.log_prob(y, 0.3, 1.7),
        "tobit": TOBIT.log_prob(y, 0.3, 1.7),
        "tobit_inf": TOBIT.log_prob(y, 0.3, 1.7, lower=-jnp.inf, upper=jnp.inf),
    }


def test_identities_with_the_base_family(x64):
    rng = np.random.default_rng(0)
    k = rng.poisson(2.0, 20).astype(float)
    r = jax.tree.map(np.asarray, _identities(
        jnp.asarray(k), jnp.asarray(rng.normal(size=20)), jnp.asarray(rng.normal(size=20)),
        jnp.asarray(rng.normal(size=20))))
    tol = dict(rtol=8 * EPS64, atol=8 * EPS64)  # a few roundings of the same terms
    # no zero inflation is the base
    np.testing.assert_allclose(r["zip_pi0"], r["base"], **tol)
    np.testing.assert_allclose(r["zip_logit_inf"], r["base"], **tol)
    # a hurdle whose zero probability is the base's f(0) is the base
    np.testing.assert_allclose(r["hurdle_f0"], r["base"], **tol)
    # the hurdle's positive part is the zero-truncated model plus log(1 - pi)
    np.testing.assert_allclose(r["hurdle"][k > 0], r["ztp"][k > 0], **tol)
    # censoring without bounds (or infinite ones) is the base
    np.testing.assert_allclose(r["tobit"], r["gauss"], **tol)
    np.testing.assert_allclose(r["tobit_inf"], r["gauss"], **tol)


@jax.jit
def _zip_pi_derivatives(pi, k):
    f = lambda p: jnp.sum(ZIP.log_prob(k, rate=2.0, zero_probs=p))  # noqa: E731
    return jax.grad(f)(pi), jax.hessian(f)(pi)


@jax.jit
def _hurdle_pi_gradient(pi, k):
    return jax.grad(lambda p: jnp.sum(HP.log_prob(k, rate=2.0, zero_probs=p)))(pi)


def test_zero_probs_at_zero_and_one_have_finite_gradients(x64):
    # d/dpi log(pi + (1 - pi) f0) = (1 - f0) / (pi + (1 - pi) f0), written out: finite at
    # pi = 0 and 1, where the chain rule through log(pi) would be 0 * inf; and a positive
    # count far in the tail (log f ~ -1e5) leaks nothing from the unused zero branch
    f0 = np.exp(-2.0)
    for pi in (0.0, 1.0, 0.3):
        g, h = _zip_pi_derivatives(jnp.asarray(pi), jnp.asarray([0.0]))
        want = (1 - f0) / (pi + (1 - pi) * f0)
        np.testing.assert_allclose(float(g), want, rtol=4 * EPS64)
        np.testing.assert_allclose(float(h), -want ** 2, rtol=8 * EPS64)
    g, _ = _zip_pi_derivatives(jnp.asarray(0.0), jnp.asarray([0.0, 3e4]))
    np.testing.assert_allclose(float(g), (1 - f0) / f0 - 1.0, rtol=8 * EPS64)
    # the hurdle: log(pi) for the zeros, log(1 - pi) for the others, nothing crossed
    g = _hurdle_pi_gradient(jnp.asarray(1.0), jnp.asarray([0.0]))
    assert float(g) == 1.0
    g = _hurdle_pi_gradient(jnp.asarray(0.0), jnp.asarray([2.0]))
    assert float(g) == -1.0


@jax.jit
def _ztp_small(lam):
    one = jnp.ones_like(lam)
    g = jax.vmap(jax.grad(lambda e: ZTP.log_prob(1.0, log_rate=e)))(jnp.log(lam))
    return ZTP.log_prob(one, rate=lam), ZTP.log_prob(one, log_rate=jnp.log(lam)), g


def test_zero_truncation_at_tiny_rates(x64):
    # log(lambda e^-lambda / (1 - e^-lambda)) at y = 1: -lambda/2 + lambda^2/24 - ...; the
    # generic form log f(1) - log1mexp(log f(0)) subtracts two terms of size |log lambda|,
    # so its error is a few eps |log lambda| (absolute), whatever the rate
    lam = np.array([1e-300, 1e-12, 1e-6, 1e-2])
    got, got_log, g = map(np.asarray, _ztp_small(jnp.asarray(lam)))
    want = -np.log(np.expm1(lam) / lam)  # log(lambda / (e^lambda - 1))
    bound = 4 * EPS64 * (np.abs(np.log(lam)) + 1)
    assert np.all(np.abs(got - want) <= bound), (got, want)
    assert np.all(np.abs(got_log - want) <= bound), (got_log, want)
    # the gradient in log_rate: d/deta = 1 - lambda / (1 - e^-lambda) -> -lambda/2, from
    # the same two terms: eps |log lambda| absolute over a derivative ~ lambda
    np.testing.assert_allclose(g[1:], 1 - lam[1:] / -np.expm1(-lam[1:]), rtol=1e-9,
                               atol=4 * EPS64)


@jax.jit
def _tails(mu, lo, y_hi, hi, yl, lo_l, hi_l):
    logistic = nllax.censored(nllax.logistic)
    return (TOBIT.log_prob(jnp.zeros_like(mu), mu, 1.0, lower=lo),
            TOBIT.log_prob(y_hi, 0.0, 1.0, upper=hi),
            logistic.log_prob(yl, 0.0, 1.0, lower=lo_l, upper=hi_l))


def test_censored_terms_keep_the_tails(x64):
    # a Tobit observation censored 40 standard deviations from the mean, a survival time
    # censored far in the right tail, logistic bounds at -+700: the base's log_cdf /
    # log_sf, not log(1 - ...)
    left, right, logi = map(np.asarray, _tails(
        jnp.asarray([40.0, -3.0]), 0.0, jnp.asarray([30.0]), jnp.asarray([30.0]),
        jnp.asarray([-700.0, 700.0]), jnp.asarray([-700.0, -jnp.inf]),
        jnp.asarray([jnp.inf, 700.0])))
    np.testing.assert_allclose(left, stats.norm.logcdf([-40.0, 3.0]), rtol=1e-13)
    np.testing.assert_allclose(right, stats.norm.logsf([30.0]), rtol=1e-13)
    np.testing.assert_allclose(logi, [-700.0, -700.0], rtol=1e-15)


@jax.jit
def _survival(log_t, upper):
    return TOBIT.log_prob(log_t, 0.4, 0.9, upper=upper)


def test_right_censored_log_normal_survival(x64):
    # censored(gaussian) on log t is the log-normal AFT model: its log-likelihood plus the
    # Jacobian -log t of each event is SciPy's lognorm logpdf / logsf
    rng = np.random.default_rng(5)
    t = rng.lognormal(0.5, 0.8, 30)
    event = rng.uniform(size=30) < 0.6
    upper = np.where(event, np.inf, np.log(t))
    got = np.asarray(_survival(jnp.log(t), jnp.asarray(upper))) - np.where(event, np.log(t), 0.0)
    want = np.where(event, stats.lognorm.logpdf(t, 0.9, scale=np.exp(0.4)),
                    stats.lognorm.logsf(t, 0.9, scale=np.exp(0.4)))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_censoring_rules_name_their_argument():
    from jax.experimental import checkify

    f = nllax.checked(lambda y, lo, hi: TOBIT.nll(y, 0.0, 1.0, lower=lo, upper=hi))
    plain = jax.jit(lambda y, lo, hi: TOBIT.nll(y, 0.0, 1.0, lower=lo, upper=hi))
    y = jnp.zeros(3)
    lo, hi = jnp.asarray([0.0, 1.0, -1.0]), jnp.asarray([1.0, 1.0, 1.0])
    assert np.isnan(float(plain(y, lo, hi)))
    with pytest.raises(checkify.JaxRuntimeError, match="`upper` must be > `lower`"):
        f(y, lo, hi)
    # shared (scalar) bounds are checked once, whatever the mask
    with pytest.raises(checkify.JaxRuntimeError, match="`y` must lie in"):
        f(y, jnp.asarray(0.5), jnp.asarray(1.0))


# ----------------------------------------------------------------------------------------
# statsmodels: the same likelihoods, and the fits


@functools.lru_cache(maxsize=None)
def _randhie():
    d = sm.datasets.randhie.load()
    return np.asarray(d.endog, np.float64), np.asarray(d.exog, np.float64)


def _const(x):
    return np.column_stack([x, np.ones(len(x))])  # statsmodels' add_constant(prepend=False)


def zip_ll(p, x, xz, y):
    return ZIP.log_prob(y, log_rate=x @ p["beta"], zero_logits=xz @ p["gamma"])


def hurdle_ll(p, x, y):
    # statsmodels' zerodist="poisson": P(y = 0) = exp(-exp(x @ gamma))
    return HP.log_prob(y, log_rate=x @ p["beta"], zero_probs=jnp.exp(-jnp.exp(x @ p["gamma"])))


def ztp_ll(beta, x, y):
    return ZTP.log_prob(y, log_rate=x @ beta)


def trunc6_ll(beta, x, y):
    return nllax.truncated(nllax.poisson, lower=6).log_prob(y, log_rate=x @ beta)


def tobit_ll(p, x, y):
    return TOBIT.log_prob(y, x @ p["beta"], log_scale=p["log_sigma"], lower=0.0)


@functools.lru_cache(maxsize=None)
def _objective(log_lik):
    return lambda p, *a: -jnp.sum(log_lik(p, *a))


def _fit(log_lik, p0, *args):
    args = tuple(jnp.asarray(a) for a in args)
    r = nllax.fit(_objective(log_lik), p0, *args, throw=True)
    s = nllax.summary(log_lik, r.params, *args)
    return r, s


def _flat(tree, keys):
    if not isinstance(tree, dict):
        return np.atleast_1d(np.asarray(tree))
    return np.concatenate([np.atleast_1d(np.asarray(tree[k])) for k in keys])


def _sm_fit(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence / overflow chatter
        return model.fit(disp=0, **kw)


def _compare(name, got, got_se, res, ll_nllax, ll_sm, bse=None):
    params = np.asarray(res.params)
    bse = np.asarray(res.bse) if bse is None else bse
    # both sides at their MLE (Newton to ~1e-10 here; statsmodels' Newton / BFGS to a
    # gradient ~1e-8): parameters within ~1e-9 relative, far below 1e-6; statsmodels'
    # standard errors come from a central-difference Hessian of its log-likelihood
    # (error O(h^2), h ~ eps^(1/4) |x|: ~1e-8 relative)
    np.testing.assert_allclose(got, params, rtol=PARAM_RTOL, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(got_se, bse, rtol=SE_RTOL, err_msg=name)
    # the log-likelihoods at statsmodels' estimate (per observation where statsmodels
    # gives them): two float64 implementations of the same formula
    np.testing.assert_allclose(ll_nllax, ll_sm, rtol=1e-11, atol=1e-11, err_msg=name)
    # the agreement table of the report (shown with -s)
    print(f"\n{name}: max relative difference params "
          f"{np.max(np.abs(got / params - 1)):.1e}, standard errors "
          f"{np.max(np.abs(got_se / bse - 1)):.1e}, log-likelihoods "
          f"{np.max(np.abs(ll_nllax / ll_sm - 1)):.1e}")


def test_zero_inflated_poisson_matches_statsmodels(x64):
    from statsmodels.discrete.count_model import ZeroInflatedPoisson

    y, X = _randhie()
    x, xz = _const(X[:, 1:4]), _const(X[:, :1])  # statsmodels' own ZIP test design
    res = _sm_fit(ZeroInflatedPoisson(y, x, exog_infl=xz, inflation="logit"),
                  method="newton", maxiter=100)
    r, s = _fit(zip_ll, {"beta": jnp.zeros(4), "gamma": jnp.zeros(2)}, x, xz, y)
    got = _flat(r.params, ("gamma", "beta"))  # statsmodels: inflation parameters first
    se = _flat(s.stderr, ("gamma", "beta"))
    p = np.asarray(res.params)
    ll = np.asarray(zip_ll({"gamma": jnp.asarray(p[:2]), "beta": jnp.asarray(p[2:])},
                           jnp.asarray(x), jnp.asarray(xz), jnp.asarray(y)))
    # statsmodels' reported bse come from its analytic ZIP Hessian, which is 0.2-0.4% off
    # the Hessian of its own log-likelihood (central differences of res.model.loglike
    # and nllax's autodiff agree to ~1e-8; statsmodels issue 7632 doubts that code): the
    # standard errors compared are statsmodels' from its log-likelihood's Hessian
    from statsmodels.tools.numdiff import approx_hess3

    bse = np.sqrt(np.diag(np.linalg.inv(-approx_hess3(p, res.model.loglike))))
    _compare("ZeroInflatedPoisson (randhie)", got, se, res, ll,
             res.model.loglikeobs(p), bse=bse)


def test_zero_truncated_and_truncated_poisson_match_statsmodels(x64):
    from statsmodels.discrete.truncated_model import TruncatedLFPoisson

    y, X = _randhie()
    x = _const(X[:, :4])
    keep = y >= 1
    res = _sm_fit(TruncatedLFPoisson(y[keep], x[keep], truncation=0), method="newton",
                  maxiter=100)
    r, s = _fit(ztp_ll, jnp.zeros(5), x[keep], y[keep])
    ll = np.asarray(ztp_ll(jnp.asarray(res.params), jnp.asarray(x[keep]),
                           jnp.asarray(y[keep])))
    _compare("TruncatedLFPoisson(truncation=0) (randhie)", np.asarray(r.params),
             np.asarray(s.stderr), res, ll, res.model.loglikeobs(np.asarray(res.params)))
    # truncation at 6 (statsmodels' truncation=5, its own test): the same likelihood at
    # statsmodels' estimate, observation by observation (the fit is the same code path)
    keep = y >= 6
    res = _sm_fit(TruncatedLFPoisson(y[keep], x[keep], truncation=5), method="newton",
                  maxiter=100)
    ll = np.asarray(trunc6_ll(jnp.asarray(res.params), jnp.asarray(x[keep]),
                              jnp.asarray(y[keep])))
    np.testing.assert_allclose(ll, res.model.loglikeobs(np.asarray(res.params)),
                               rtol=1e-11, atol=1e-11)


def test_hurdle_poisson_matches_statsmodels(x64):
    from statsmodels.discrete.truncated_model import HurdleCountModel

    y, X = _randhie()
    x = _const(X[:, :4])
    res = _sm_fit(HurdleCountModel(y, x, dist="poisson", zerodist="poisson"),
                  method="newton", maxiter=100)
    r, s = _fit(hurdle_ll, {"beta": jnp.zeros(5), "gamma": jnp.zeros(5)}, x, y)
    p = np.asarray(res.params)  # zero model first, then the count model
    ll = np.asarray(hurdle_ll({"gamma": jnp.asarray(p[:5]), "beta": jnp.asarray(p[5:])},
                              jnp.asarray(x), jnp.asarray(y)))
    # statsmodels' hurdle model has no loglikeobs: the total
    _compare("HurdleCountModel(poisson, poisson) (randhie)", _flat(r.params, ("gamma", "beta")),
             _flat(s.stderr, ("gamma", "beta")), res, ll.sum(), res.llf)


def test_tobit_matches_a_statsmodels_generic_likelihood(x64):
    # statsmodels has no Tobit: its GenericLikelihoodModel with the closed-form Tobit
    # log-likelihood in SciPy (norm.logcdf for the censored zeros, norm.logpdf otherwise)
    # on the affairs data (Fair 1978), left-censored at 0, with log sigma as a parameter
    from statsmodels.base.model import GenericLikelihoodModel

    d = sm.datasets.fair.load_pandas()
    y = d.endog.to_numpy(np.float64)
    x = _const(d.exog[["rate_marriage", "age", "yrs_married", "religious"]].to_numpy(
        np.float64))

    class Tobit(GenericLikelihoodModel):
        def loglikeobs(self, params):
            xb, s = self.exog @ params[:-1], np.exp(params[-1])
            return np.where(self.endog <= 0, stats.norm.logcdf(-xb / s),
                            stats.norm.logpdf(self.endog, xb, s))

    model = Tobit(y, x)
    start = np.concatenate([np.linalg.lstsq(x, y, rcond=None)[0], [0.0]])
    res = _sm_fit(model, start_params=start, method="bfgs", maxiter=5000, gtol=1e-9)
    res = _sm_fit(model, start_params=np.asarray(res.params), method="newton", maxiter=50)
    r, s = _fit(tobit_ll, {"beta": jnp.zeros(5), "log_sigma": jnp.asarray(0.0)}, x, y)
    p = np.asarray(res.params)
    ll = np.asarray(tobit_ll({"beta": jnp.asarray(p[:-1]), "log_sigma": jnp.asarray(p[-1])},
                             jnp.asarray(x), jnp.asarray(y)))
    _compare("Tobit = censored(gaussian), lower=0 (fair)", _flat(r.params, ("beta", "log_sigma")),
             _flat(s.stderr, ("beta", "log_sigma")), res, ll, model.loglikeobs(p))
