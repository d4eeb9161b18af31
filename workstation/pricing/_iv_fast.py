"""Fast path of the Black-76 implied volatility: a libm-free erfcx, the normalised Black function with a single
exp, and a table initial guess accurate to ~2e-5 so that one Householder(3) step reaches rounding level.

Normalised problem (see ``normal.py``): find s = vol * sqrt(T) with b(x, s) = beta, x = -|ln(F/K)| <= 0.

erfcx
    ``erfcx_fast(z) = exp(z^2) erfc(z)`` for z >= 0 is t * p_k(u): t = 1 / (1 + z) in 64 equal segments, p_k
    the degree-7 Chebyshev interpolant of erfcx(z(t)) / t in the segment's local u in [-1, 1], as monomials
    (``fit_erfcx_coefficients`` regenerates ``_ERFCX_COEF`` bit for bit in decimal arithmetic). Max error 2 ulp;
    one division, no exp, no branch on the argument.

Black function with one exp
    With h = x/s, d1,2 = h +- s/2 and E = exp(-h^2/2 - s^2/8) (the vega is b'(s) = E / sqrt(2 pi)), both
    e^{x/2} N(d1) and e^{-x/2} N(d2) are E/2 times an erfcx value. Below the inflection point (d1 < 0)
    b = E/2 [erfcx(-d1/sqrt2) - erfcx(-d2/sqrt2)]; above it the distance to the bound is evaluated instead,
    b_max - b = E/2 [erfcx(d1/sqrt2) + erfcx(-d2/sqrt2)]: no cancellation in deep tails or near the bound.
    The Householder(3) step on f(s) = b(s) - beta needs f''/f' = x^2/s^3 - s/4 and the third derivative over
    the first, (f''/f')^2 - 3 x^2/s^4 - 1/4: both algebraic.

Initial guess: two tables of the solution with 4 x 4 Lagrange (bicubic) interpolation on uniform grids
    small s (sigma < 0.67, the Bachelier regime): theta = ln(1 + |x|/beta), coordinates a = sqrt(1 + theta) - 1
        in [0, 6.5] (|h| up to ~9.7) and sigma = |x|/theta * sqrt(2 pi + theta/2) (beta sqrt(2 pi) at x = 0) in
        [0, 1]; stores s / sigma. At fixed h = x/s, b = s B(h) (1 + O(s^2)) with B the Bachelier price, so a
        depends on h only as s -> 0 and sigma is s times a function of h: s / sigma is smooth down to sigma = 0,
        whose column holds the s -> 0 limit (``bachelier_limit_ratio``).
    large s: coordinates sqrt(|x|) in [0, 9.2] (the solution is even in it: a mirrored ghost row) and
        ln(beta / (b_max - beta)) in [-55, 22.5], the logit of the price relative to its bound, which keeps
        resolving the price as it approaches the bound; stores s.
    The nodes are solved by the reference solver (``implied_vol.normalised_implied_sd``) on first use.
Measured over the benchmark domain (vol 1%..300%, T 1 day..10 y, |ln(K/F)| <= 6 sd) the guess is within 2e-5;
a Householder(3) step from relative error e leaves ~200 e^4 (|h| = 6), so the caller accepts a step below 1e-4
and otherwise takes a second one or falls back to the safeguarded solver.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

SQRT_2PI = math.sqrt(2.0 * math.pi)
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / SQRT_2PI

_ERFCX_SEGMENTS = 64
# rows: segment k of t = 1/(1+z) in [k/64, (k+1)/64]; erfcx(z) = t * sum_j row[j] u^j, u = 2 (64 t - k) - 1
_ERFCX_COEF = np.array([
    (0.5686143952246924, 0.004441752453879616, 1.679836113858438e-05, -1.4505567852741432e-07,
     -2.642081877120714e-09, -1.818846090225779e-12, 3.92599986533964e-13, 3.1818102894901295e-15),
    (0.5775638908255889, 0.004507120614924842, 1.5864567870072013e-05, -1.6620058610003727e-07,
     -2.635889210207961e-09, 3.1312989401011296e-12, 4.2944685764528593e-13, 2.0303106786987033e-15),
    (0.5866402186759365, 0.0045685004647277915, 1.480445783554716e-05, -1.8709272399542552e-07,
     -2.5783255004772306e-09, 8.419031797305839e-12, 4.48164313272428e-13, 6.083570095849995e-16),
    (0.5958348997398896, 0.0046253914367434526, 1.3620803041327283e-05, -2.0731066248451924e-07,
     -2.467171506907945e-09, 1.3807043916188637e-11, 4.457757707824372e-13, -9.619668494174289e-16),
    (0.6051384683357152, 0.00467730916112461, 1.2318937719922609e-05, -2.26425114803335e-07,
     -2.302723275103101e-09, 1.9033471893876962e-11, 4.2123926633940684e-13, -2.530062591080026e-15),
    (0.614540514800046, 0.004723795725840705, 1.0906743622474544e-05, -2.440197183261753e-07,
     -2.0879151161984774e-09, 2.3836868395522326e-11, 3.756744483949425e-13, -3.942111441430237e-15),
    (0.6240297484481357, 0.004764429627686818, 9.394509707543034e-06, -2.597117788643717e-07,
     -1.8281865175316261e-09, 2.7981706400819558e-11, 3.1222291588087596e-13, -5.0669724406018274e-15),
    (0.6335940797118643, 0.004798834919377173, 7.794672547994205e-06, -2.7317096655002647e-07,
     -1.5311093736169878e-09, 3.1280154182607984e-11, 2.3558226982255416e-13, -5.815948402598462e-15),
    (0.6432207193906214, 0.004826689107488261, 6.121455126714171e-06, -2.8413424331626704e-07,
     -1.2058303633296742e-09, 3.3606855102361844e-11, 1.5133304022625834e-13, -6.152211615432848e-15),
    (0.6528962921431889, 0.0048477294453483965, 4.390430465845927e-06, -2.9241585013026864e-07,
     -8.62407849711669e-10, 3.490513607342387e-11, 6.521159849762586e-14, -6.089279989094612e-15),
    (0.6626069607507835, 0.004861757382174813, 2.6180415710492146e-06, -2.9791185567161635e-07,
     -5.111292957300074e-10, 3.518486823683379e-11, -1.7532018369801254e-14, -5.68098418158183e-15),
    (0.6723385573325752, 0.004868641058956653, 8.211101476935389e-07, -3.005994264875388e-07,
     -1.6188543039674755e-10, 3.4513613137675997e-11, -9.259931952857795e-14, -5.006906048075352e-15),
    (0.6820767176033762, 0.004868315867196538, -9.836360938799164e-07, -3.0053151074218316e-07,
     1.7634331693115123e-10, 3.300344934070952e-11, -1.568966152728725e-13, -4.1572367316789495e-15),
    (0.6918070144083461, 0.004860783196006529, -2.779993014615352e-06, -2.978279725586762e-07,
     4.958575923544678e-10, 3.079598607409214e-11, -2.085899290749074e-13, -3.2199398577193827e-15),
    (0.7015150871099601, 0.004846107577947918, -4.55264873418374e-06, -2.9266436152906617e-07,
     7.904601093649184e-10, 2.804770164016867e-11, -2.470057786693093e-13, -2.2716996926666728e-15),
    (0.7111867638848246, 0.004824412500808898, -6.287480775052845e-06, -2.8525948018771915e-07,
     1.055538256621232e-09, 2.491712443221745e-11, -2.724337403128486e-13, -1.3729022143734585e-15),
    (0.720808174555857, 0.004795875181654187, -7.971777603887216e-06, -2.7586276932773973e-07,
     1.2880315351499834e-09, 2.155470733186214e-11, -2.8588395336797244e-13, -5.660818714892025e-16),
    (0.7303658521864882, 0.004760720604280334, -9.59438601740141e-06, -2.647423194399944e-07,
     1.4863125471631098e-09, 1.8095668816002156e-11, -2.8884167258473946e-13, 1.231126736537737e-16),
    (0.7398468222540214, 0.0047192151066558835, -1.1145789967725558e-05, -2.5217408203770604e-07,
     1.6500107387680164e-09, 1.4655651415402973e-11, -2.830470921227818e-13, 6.834274535498822e-16),
    (0.7492386787659355, 0.0046716597765777525, -1.2618129182128512e-05, -2.384326309545577e-07,
     1.7798051833562654e-09, 1.1328789907580715e-11, -2.7031565063238853e-13, 1.1148309561567661e-15),
    (0.7585296471635649, 0.004618383876960718, -1.4005167437298908e-05, -2.2378363169539515e-07,
     1.8772079265023756e-09, 8.187664200470992e-12, -2.5240377335794543e-13, 1.4252759373094119e-15),
    (0.7677086342600464, 0.004559738481485183, -1.5302220823158543e-05, -2.0847802622418462e-07,
     1.9443540228265878e-09, 5.2845978000454875e-12, -2.3091803565762504e-13, 1.6277801211629097e-15),
    (0.7767652657797167, 0.004496090460373442, -1.6506056030763224e-05, -1.9274783257574335e-07,
     1.9838092200183546e-09, 2.6538138712409886e-12, -2.0726173747102754e-13, 1.7380198376405504e-15),
    (0.7856899123065079, 0.004427816917446576, -1.7614767869720067e-05, -1.7680338949991173e-07,
     1.998401770633047e-09, 3.140453120622961e-13, -1.826111860553203e-13, 1.7724930757546549e-15),
    (0.7944737046158236, 0.004355300145006494, -1.8627644076676195e-05, -1.6083183939061305e-07,
     1.9910812881124415e-09, -1.7287101854695793e-12, -1.5791385489486334e-13, 1.7472215058627067e-15),
    (0.8031085394669133, 0.004278923133392448, -1.9545024188821343e-05, -1.4499663055101417e-07,
     1.964804931043548e-09, -3.4785091527570966e-12, -1.3390137655921405e-13, 1.6769147225552098e-15),
    (0.8115870769811092, 0.004199065647585895, -2.0368157951726736e-05, -1.294378252550849e-07,
     1.9224494085130566e-09, -4.94699706958263e-12, -1.1111155053668211e-13, 1.5745024679113564e-15),
    (0.819902730735848, 0.004116100863864223, -2.1099067495773323e-05, -1.1427301691027924e-07,
     1.866746205648448e-09, -6.151238590196488e-12, -8.991487699345596e-14, 1.4509412997985703e-15),
    (0.8280496516749877, 0.0040303925448384485, -2.1740416403040767e-05, -9.959868295844335e-08,
     1.8002368741865597e-09, -7.111876816495969e-12, -7.054236980998423e-14, 1.3152128385368946e-15),
    (0.8360227068814511, 0.0039422927206997594, -2.2295387824034235e-05, -8.549182626080122e-08,
     1.7252450699346076e-09, -7.851622785369927e-12, -5.311246044265075e-14, 1.1744456276858935e-15),
    (0.8438174541863633, 0.0038521398375234743, -2.2767572999348647e-05, -7.201178399108634e-08,
     1.6438621205757618e-09, -8.394055369374195e-12, -3.76556462092149e-14, 1.034108180939918e-15),
    (0.8514301135060462, 0.0037602573294091527, -2.316087089083857e-05, -5.92021078138001e-08,
     1.5579431723067734e-09, -8.762699648185184e-12, -2.4136169143573856e-14, 8.982349574609351e-16),
    (0.8588575357096921, 0.0036669525694802514, -2.3479399117657906e-05, -4.709244136500367e-08,
     1.4691113161308552e-09, -8.98034612348195e-12, -1.2470461065674505e-14, 7.69658905713258e-16),
    (0.8660971697303603, 0.003572516154792921, -2.372741600796153e-05, -3.570034031288727e-08,
     1.3787674800181115e-09, -9.06857192589219e-12, -2.54239094113635e-15, 6.502336158268415e-16),
    (0.8731470285431967, 0.0034772214815492904, -2.3909253298766582e-05, -2.5032996446153735e-08,
     1.2881042552298732e-09, -9.047426818067737e-12, 5.7844638611658136e-15, 5.410351789147564e-16),
    (0.8800056545497176, 0.0033813245692875405, -2.4029258826203993e-05, -1.50888404445217e-08,
     1.198122181344755e-09, -8.935250142619599e-12, 1.2657199617697906e-14, 4.425389047944537e-16),
    (0.8866720848271571, 0.0032850640956117267, -2.4091748429100016e-05, -5.85900848929894e-09,
     1.109647332554228e-09, -8.748589043560181e-12, 1.8226256619632407e-14, 3.5476948881661973e-16),
    (0.8931458166282098, 0.003188661606275905, -2.4100966225268218e-05, 2.6713339964711476e-09,
     1.0233493223737168e-09, -8.502192722415083e-12, 2.2640009774597805e-14, 2.774254210690993e-16),
    (0.8994267734495353, 0.00309232186885384, -2.4061052398886495e-05, 1.0521812077203037e-08,
     9.397590745362604e-10, -8.209061801022238e-12, 2.604093238829143e-14, 2.0997972576075827e-16),
    (0.9055152719272922, 0.002996233341659978, -2.3976017647801337e-05, 1.7715800667189602e-08,
     8.592858969282754e-10, -7.880535831305974e-12, 2.8563020485103973e-14, 1.517597735786799e-16),
    (0.9114119897646705, 0.002900568732932461, -2.3849723472450007e-05, 2.4279516614946854e-08,
     7.822335470544064e-10, -7.526405505282784e-12, 3.0330205388082694e-14, 1.0200913420586058e-16),
    (0.9171179348496241, 0.0028054856284703018, -2.3685867536023065e-05, 3.024123460204484e-08,
     7.088150964809619e-10, -7.155039136527981e-12, 3.1455523709599775e-14, 5.993438621641588e-17),
    (0.9226344156803982, 0.0027111271688861033, -2.348797338277467e-05, 3.5630616790415505e-08,
     6.391664929501421e-10, -6.773515514264092e-12, 3.204085339646097e-14, 2.4739589841066482e-17),
    (0.9279630131815385, 0.002617622760364623, -2.3259383863627647e-05, 4.0478145628492025e-08,
     5.733587871044447e-10, -6.387757307694543e-12, 3.217706034414228e-14, -4.349167145185323e-18),
    (0.9331055539633691, 0.0025250888052932166, -2.300325768212178e-05, 4.4814649171386726e-08,
     5.114090403100073e-10, -6.002660870135357e-12, 3.194443156583129e-14, -2.806706673675736e-17),
    (0.9380640850529206, 0.0024336294413510847, -2.2722568536922917e-05, 4.8670908549536464e-08,
     4.532899646941349e-10, -5.6222196143373204e-12, 3.141329778419007e-14, -4.709994236115026e-17),
    (0.9428408501034762, 0.0023433372796168445, -2.2420106397873255e-05, 5.207733772772585e-08,
     3.989383694434041e-10, -5.24963915646426e-12, 3.0644770781222935e-14, -6.207828958784643e-17),
    (0.9474382670727989, 0.0022542941339902187, -2.2098480509807146e-05, 5.506372634971317e-08,
     3.482625013440213e-10, -4.88744320736667e-12, 2.969153927233507e-14, -7.357472263024587e-17),
    (0.9518589073462435, 0.002166571735739181, -2.176012377140502e-05, 5.7659037200034284e-08,
     3.011483747015185e-10, -4.537569771718247e-12, 2.859868193947256e-14, -8.210392989180256e-17),
    (0.9561054762699253, 0.0020802324282962414, -2.1407298184859322e-05, 5.989125058712541e-08,
     2.57465187941157e-10, -4.201457637997538e-12, 2.7404468067392976e-14, -8.812438259503774e-17),
    (0.960180795050522, 0.0019953298385552336, -2.104210111597166e-05, 6.178724872666996e-08,
     2.1706992278502617e-10, -3.880123438958125e-12, 2.6141125463657694e-14, -9.204121773216358e-17),
    (0.9640877839717744, 0.0019119095218814647, -2.0666472143552114e-05, 6.337273395711605e-08,
     1.7981121803917167e-10, -3.5742297612716752e-12, 2.4835562454618446e-14, -9.420985352823057e-17),
    (0.9678294468730163, 0.0018300095788615078, -2.028220031183255e-05, 6.467217533455379e-08,
     1.4553260456110354e-10, -3.2841449075061473e-12, 2.3510036133358664e-14, -9.49400061505982e-17),
    (0.9714088568318162, 0.001749661242501341, -1.9890931630294737e-05, 6.570877882150245e-08,
     1.1407518156382205e-10, -3.009994982137882e-12, 2.2182763033622632e-14, -9.449986442211544e-17),
    (0.9748291429908189, 0.001670889435149031, -1.949417669215757e-05, 6.650447689805634e-08,
     8.527980752940532e-11, -2.7517090007264443e-12, 2.086847130540739e-14, -9.31202484770429e-17),
    (0.9780934784679095, 0.0015937132948854063, -1.909331830609449e-05, 6.707993398200107e-08,
     5.898887200356631e-11, -2.5090577193701e-12, 1.9578895513170778e-14, -9.099863196302033e-17),
    (0.9812050692887013, 0.0015181466715065857, -1.868961905589744e-05, 6.745456454704123e-08,
     3.504770766958961e-11, -2.281686859160738e-12, 1.8323216562897006e-14, -8.830294845181791e-17),
    (0.984167144280918, 0.0014441985925278816, -1.828422872009656e-05, 6.764656127692155e-08,
     1.3305695523351012e-11, -2.0691453644998174e-12, 1.7108450148111277e-14, -8.517513366812715e-17),
    (0.9869829458713462, 0.0013718736998802519, -1.7878191498300795e-05, 6.767293099080938e-08,
     -6.382890202110034e-12, -1.870909290047348e-12, 1.5939787613844704e-14, -8.173437807183431e-17),
    (0.9896557217275758, 0.001301172658157683, -1.7472453003539294e-05, 6.754953642534032e-08,
     -2.415825642179191e-11, -1.6864018626278291e-12, 1.4820893371302885e-14, -7.808008096551319e-17),
    (0.99218871718861, 0.0012320925354150662, -1.7067866990431316e-05, 6.72911422650656e-08,
     -4.0154649166653455e-11, -1.5150102144234043e-12, 1.3754163032422541e-14, -7.429450905759577e-17),
    (0.9945851684305326, 0.0011646271576186095, -1.6665201797843166e-05, 6.691146407966772e-08,
     -5.4500064121741525e-11, -1.356099234235346e-12, 1.2740946332634498e-14, -7.044517043226222e-17),
    (0.9968482963157013, 0.0010987674379210682, -1.62651464920309e-05, 6.642321905718449e-08,
     -6.73160829491578e-11, -1.2090229358494474e-12, 1.1781738717716387e-14, -6.658692006916291e-17),
    (0.9989813008763273, 0.0010345016819775675, -1.5868316702320345e-05, 6.583817762141306e-08,
     -7.871781237304981e-11, -1.0731336974804341e-12, 1.0876345220984289e-14, -6.276381613864321e-17),
])


_PI_200 = ("3.14159265358979323846264338327950288419716939937510582097494459230781640628620899862803482534211706798"
           "214808651328230664709384460955058223172535940812848111745028410270193852110555964462294895493038196")


def _erfcx_decimal(z, digits: int):
    """exp(z^2) erfc(z) for a decimal z >= 0, to ~`digits` significant digits, as a decimal."""
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = digits + 10 + (int(z * z / 2) if z < 8 else 0)  # the series cancels ~z^2 / ln 10 digits
        sqrt_pi = decimal.Decimal(_PI_200).sqrt()
        if z < 8:
            # erfcx(z) = e^{z^2} - 2/sqrt(pi) sum_n 2^n z^{2n+1} / (2n+1)!!  (all terms positive)
            zz = z * z
            term = total = +z
            tiny = decimal.Decimal(10) ** -(ctx.prec + 2)
            n = 0
            while term > tiny * total:
                n += 1
                term = term * 2 * zz / (2 * n + 1)
                total += term
            result = zz.exp() - 2 / sqrt_pi * total
        else:
            # Laplace continued fraction 1/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))), from the tail
            f = +z
            for k in range(40 * digits, 0, -1):
                f = z + decimal.Decimal(k) / 2 / f
            result = 1 / (sqrt_pi * f)
    return +result


def erfcx_reference(z: float, digits: int = 40) -> float:
    """exp(z^2) erfc(z) for z >= 0 in decimal arithmetic, rounded to double (slow: a test reference)."""
    import decimal

    return float(_erfcx_decimal(decimal.Decimal(z), digits))


def fit_erfcx_coefficients(segments: int = 64, degree: int = 7) -> np.ndarray:
    """Regenerate ``_ERFCX_COEF`` (~0.1 s): on each segment of t = 1/(1+z), the Chebyshev interpolant of
    erfcx(z(t)) / t at degree + 1 nodes in the local u in [-1, 1], converted to monomials in 50-digit decimal
    arithmetic and only then rounded to double."""
    import decimal

    n = degree + 1
    coef = np.empty((segments, n))
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        pi = decimal.Decimal(_PI_200)
        one = decimal.Decimal(1)

        def cos(a):
            a = a % (2 * pi)
            term = total = one
            k = 0
            while abs(term) > decimal.Decimal(10) ** -55:
                k += 2
                term = -term * a * a / (k * (k - 1))
                total += term
            return total

        nodes = [cos(pi * (2 * i + 1) / (2 * n)) for i in range(n)]
        cheb = [[cos(pi * j * (2 * i + 1) / (2 * n)) for i in range(n)] for j in range(n)]
        basis = [[one] + [0 * one] * (n - 1), [0 * one, one] + [0 * one] * (n - 2)]  # T_j in monomials
        for _ in range(2, n):
            nxt = [0 * one] + [2 * c for c in basis[-1][:-1]]
            basis.append([a - b for a, b in zip(nxt, basis[-2])])
        for k in range(segments):
            values = []
            for u in nodes:
                t = (k + (u + 1) / 2) / segments
                values.append(_erfcx_decimal((1 - t) / t, 40) / t)
            a = [sum(v * c for v, c in zip(values, cheb[j])) * 2 / n for j in range(n)]
            a[0] /= 2
            coef[k] = [float(sum(a[j] * basis[j][m] for j in range(n))) for m in range(n)]
    return coef


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
def erfcx_fast(z: float) -> float:
    """exp(z^2) erfc(z) for finite z >= 0 (z = +inf gives 0), relative error <= 2 ulp."""
    t = 1.0 / (1.0 + z)
    y = t * _ERFCX_SEGMENTS
    k = int(y)
    if k >= _ERFCX_SEGMENTS:
        k = _ERFCX_SEGMENTS - 1
    u = 2.0 * (y - k) - 1.0
    c = _ERFCX_COEF[k]
    p = c[7]
    p = p * u + c[6]
    p = p * u + c[5]
    p = p * u + c[4]
    p = p * u + c[3]
    p = p * u + c[2]
    p = p * u + c[1]
    p = p * u + c[0]
    return t * p


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
def householder_step(x: float, s: float, beta: float, gap: float) -> float:
    """One Householder(3) step on f(s) = b(x, s) - beta from s > 0 (x <= 0, gap = e^{x/2} - beta); returns the
    new s (NaN or inf when the vega underflows). Branch-free: both sides of the inflection point share the code."""
    r = 1.0 / s
    h = x * r
    t = 0.5 * s
    d1 = h + t
    d2 = h - t
    half_e = 0.5 * math.exp(-0.5 * h * h - 0.5 * t * t)  # vega = 2 half_e / sqrt(2 pi)
    e1 = erfcx_fast(abs(d1) * INV_SQRT2)
    e2 = erfcx_fast(-d2 * INV_SQRT2)
    lower = d1 < 0.0
    sign = 1.0 if lower else -1.0
    target = beta if lower else -gap
    # lower: f = E/2 (e1 - e2) - beta;  upper: f = (b_max - beta) - E/2 (e1 + e2)
    f = sign * (half_e * (e1 - sign * e2)) - target
    nu = f * (0.5 * SQRT_2PI) / half_e  # Newton step f / f'
    hr = h * r
    a2 = h * hr - 0.5 * t  # f'' / f' = x^2 / s^3 - s / 4
    a3 = a2 * a2 - 3.0 * hr * hr - 0.25  # third over first derivative
    return s - nu * (1.0 - 0.5 * nu * a2) / (1.0 - nu * a2 + nu * nu * a3 * (1.0 / 6.0))


# ---- initial guess tables -------------------------------------------------------------------------------------
# small-s table: a = sqrt(1 + theta) - 1 in [0, SMALL_A_MAX], sigma in [0, SMALL_SIGMA_HI]; stores s / sigma
SMALL_A_MAX = 6.5
SMALL_SIGMA_HI = 1.0
SMALL_SIGMA_SPLIT = 0.67  # sigma below this: small table, else large table
# large-s table: c1 = sqrt(|x|) in [-step, LARGE_C1_MAX] (node 0 mirrors node 2), c2 = ln(beta / gap); stores s
LARGE_C1_MAX = 9.2
LARGE_C2_LO = -55.0
LARGE_C2_HI = 22.5


def small_table_nodes(n1: int, n2: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, beta, sigma) at the nodes of the small-s table (shape (n1, n2)); column 0 is sigma = 0 (x = beta = 0)
    and holds the s -> 0 limit, ``bachelier_limit_ratio``."""
    a = np.linspace(0.0, SMALL_A_MAX, n1)[:, None]
    sigma = np.linspace(0.0, SMALL_SIGMA_HI, n2)[None, :]
    theta = (1.0 + a) ** 2 - 1.0
    ax = sigma * theta / np.sqrt(2.0 * np.pi + 0.5 * theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(theta > 0.0, ax / np.expm1(theta), sigma / SQRT_2PI)
    return -ax, beta, np.broadcast_to(sigma, ax.shape)


@njit(nogil=True, cache=True, error_model="numpy")
def bachelier_limit_ratio(theta: float) -> float:
    """lim s / sigma as s -> 0 along a row of the small-s table (theta = ln(1 + |x|/beta) fixed).

    There b = s B(h) with B(h) = n(h) + h N(h) (Bachelier), so |h| = y solves y / B(-y) = e^theta - 1, and
    s / sigma = theta / (y sqrt(2 pi + theta / 2)). Newton on ln y - ln B(-y), B(-y) = n(y) (1 - y M(y)) with
    Mills' ratio M(y) = sqrt(pi/2) erfcx(y / sqrt 2)."""
    if theta <= 0.0:
        return 1.0
    ln_kappa = math.log(math.expm1(theta))
    y = math.sqrt(2.0 * theta) if theta > 1.0 else math.expm1(theta) * INV_SQRT_2PI
    for _ in range(60):
        m = math.sqrt(0.5 * math.pi) * erfcx_fast(y * INV_SQRT2)
        one_minus = 1.0 - y * m
        f = math.log(y) + 0.5 * y * y + 0.5 * math.log(2.0 * math.pi) - math.log(one_minus) - ln_kappa
        step = f / (1.0 / y + m / one_minus)
        y_new = y - step
        y = y_new if y_new > 0.0 else 0.5 * y
        if abs(step) <= 1e-15 * y:
            break
    return theta / (y * math.sqrt(2.0 * math.pi + 0.5 * theta))


def large_table_nodes(n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, beta) at the nodes of the large-s table (shape (n1, n2)); row 0 is the ghost row at c1 = -step."""
    step = LARGE_C1_MAX / (n1 - 2)
    c1 = (np.arange(n1) - 1.0)[:, None] * step
    c2 = np.linspace(LARGE_C2_LO, LARGE_C2_HI, n2)[None, :]
    x = -(c1 * c1) + 0.0 * c2
    q = 1.0 / (1.0 + np.exp(-c2))
    return x, q * np.exp(0.5 * x)


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
def _lagrange4(u: float) -> tuple[float, float, float, float]:
    """Cubic Lagrange weights of the nodes -1, 0, 1, 2 at u."""
    um1 = u - 1.0
    um2 = u - 2.0
    up1 = u + 1.0
    return (-u * um1 * um2 * (1.0 / 6.0), 0.5 * up1 * um1 * um2, -0.5 * up1 * u * um2, up1 * u * um1 * (1.0 / 6.0))


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
def _bicubic(table: np.ndarray, f1: float, f2: float) -> float:
    """4 x 4 Lagrange interpolation at fractional node indices (f1, f2) >= 0; one-sided at the edges."""
    n1, n2 = table.shape
    # clamp the stencil inside the table (NaN-safe: a NaN index picks the first stencil, the result stays NaN)
    g1 = f1 if f1 >= 1.0 else 1.0
    g2 = f2 if f2 >= 1.0 else 1.0
    i = int(g1 if g1 <= n1 - 3.0 else n1 - 3.0)
    j = int(g2 if g2 <= n2 - 3.0 else n2 - 3.0)
    w0, w1, w2, w3 = _lagrange4(f1 - i)
    v0, v1, v2, v3 = _lagrange4(f2 - j)
    r0 = table[i - 1, j - 1] * v0 + table[i - 1, j] * v1 + table[i - 1, j + 1] * v2 + table[i - 1, j + 2] * v3
    r1 = table[i, j - 1] * v0 + table[i, j] * v1 + table[i, j + 1] * v2 + table[i, j + 2] * v3
    r2 = table[i + 1, j - 1] * v0 + table[i + 1, j] * v1 + table[i + 1, j + 1] * v2 + table[i + 1, j + 2] * v3
    r3 = table[i + 2, j - 1] * v0 + table[i + 2, j] * v1 + table[i + 2, j + 1] * v2 + table[i + 2, j + 2] * v3
    return w0 * r0 + w1 * r1 + w2 * r2 + w3 * r3


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
def guess_scale(x: float, beta: float) -> tuple[float, float]:
    """(sigma, theta) of the small-s coordinates: theta = ln(1 + |x|/beta), sigma = |x|/theta sqrt(2 pi + theta/2)."""
    kappa = -x / beta
    u = 1.0 + kappa
    theta = math.log(u)  # absolute error ~1 ulp: enough for the coordinate a
    # kappa / ln(1 + kappa) to rounding even for tiny kappa (Goldberg's log1p trick); 1 when u rounds to 1
    ratio = (u - 1.0) / theta if theta > 0.0 else 1.0
    return beta * ratio * math.sqrt(2.0 * math.pi + 0.5 * theta), theta


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
def small_guess(sigma: float, theta: float, small: np.ndarray) -> float:
    """s from the small-s table (for sigma < SMALL_SIGMA_SPLIT); NaN beyond its deep-wing edge."""
    a = math.sqrt(1.0 + theta) - 1.0
    n1, n2 = small.shape
    g = sigma * _bicubic(small, min(a, SMALL_A_MAX) * ((n1 - 1) / SMALL_A_MAX), sigma * ((n2 - 1) / SMALL_SIGMA_HI))
    return g if a <= SMALL_A_MAX else np.nan


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
def large_guess(x: float, beta: float, gap: float, large: np.ndarray) -> float:
    """s from the large-s table; NaN outside it."""
    c1 = math.sqrt(-x)
    c2 = math.log(beta / gap)
    n1, n2 = large.shape
    f1 = min(c1, LARGE_C1_MAX) * ((n1 - 2) / LARGE_C1_MAX) + 1.0
    f2 = (min(max(c2, LARGE_C2_LO), LARGE_C2_HI) - LARGE_C2_LO) * ((n2 - 1) / (LARGE_C2_HI - LARGE_C2_LO))
    g = _bicubic(large, f1, f2)
    return g if (c1 <= LARGE_C1_MAX and LARGE_C2_LO <= c2 <= LARGE_C2_HI) else np.nan


@njit(nogil=True, cache=True, error_model="numpy")
def initial_guess(x: float, beta: float, gap: float, small: np.ndarray, large: np.ndarray) -> float:
    """Table guess of s with b(x, s) = beta (x <= 0, 0 < beta, gap = e^{x/2} - beta > 0); NaN outside the tables."""
    sigma, theta = guess_scale(x, beta)
    if sigma < SMALL_SIGMA_SPLIT:
        return small_guess(sigma, theta, small)
    return large_guess(x, beta, gap, large)
