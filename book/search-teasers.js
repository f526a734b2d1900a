// Search result teasers: mdBook indexes the text of code blocks too, so a
// teaser cut near an ASCII diagram shows runs of box-drawing characters
// ("┌────┐ │ ... │"). Drop those characters from the teasers as they are
// shown; the words around them stay.
(function () {
    'use strict';
    const results = document.getElementById('searchresults');
    if (!results) {
        return;
    }
    const drawing = /[\u2500-\u257f\u25b2-\u25c4]+/g;
    new MutationObserver(function () {
        for (const teaser of results.querySelectorAll('.teaser')) {
            const walker = document.createTreeWalker(teaser, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const text = node.nodeValue.replace(drawing, ' ').replace(/ {2,}/g, ' ');
                if (text !== node.nodeValue) {
                    node.nodeValue = text;
                }
            }
        }
    }).observe(results, { childList: true, subtree: true });
})();
