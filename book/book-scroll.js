// Code blocks and tables on a narrow screen (see code-blocks.css):
// - commands and outputs get .wraps, so that a phone wraps their long lines;
//   drawings (box-drawing characters) and Rust listings keep their shape;
// - anything that still scrolls sideways gets .more-right while it hides
//   something on its right: a shadow on that edge.
(function () {
    'use strict';
    const drawing = /[\u2500-\u257f\u25b2-\u25c4]/;
    const scrollers = [];
    for (const code of document.querySelectorAll('main pre > code')) {
        if (!code.classList.contains('language-rust') && !drawing.test(code.textContent)) {
            code.classList.add('wraps');
        }
        scrollers.push(code);
    }
    scrollers.push(...document.querySelectorAll('main .table-wrapper'));

    function mark(element) {
        const hidden = element.scrollWidth - element.clientWidth - element.scrollLeft;
        element.classList.toggle('more-right', hidden > 1);
    }
    for (const element of scrollers) {
        mark(element);
        element.addEventListener('scroll', function () { mark(element); }, { passive: true });
    }
    window.addEventListener('resize', function () { scrollers.forEach(mark); });
})();
