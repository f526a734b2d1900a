// Code blocks and tables on a narrow screen (see code-blocks.css):
// - commands and outputs (```console and ```sh) get .wraps, so that a phone
//   wraps their long lines, each line in a span of its own that
//   code-blocks.css indents when it wraps. ```text (drawings, outputs side
//   by side) and anything with box-drawing characters keep their shape.
//   Rust listings get .wraps-code: their long lines wrap at every width,
//   with a hanging indent. The text stays the same, newlines included:
//   copying is unchanged;
// - each cell of a table gets its column's heading as data-label: a phone
//   shows a table as one card per row, each cell under its heading;
// - anything that still scrolls sideways gets .more-right while it hides
//   something on its right: a shadow on that edge.
(function () {
    'use strict';
    const drawing = /[\u2500-\u257f\u25b2-\u25c4]/;
    const scrollers = [];

    // <span class="line">...</span>\n for each line of a code block; the
    // highlighting spans a line is made of are rebuilt inside it.
    function spanLines(code) {
        const pieces = []; // [text, the classes of the spans it was in]
        (function walk(node, classes) {
            for (const child of node.childNodes) {
                if (child.nodeType === Node.TEXT_NODE) {
                    pieces.push([child.nodeValue, classes]);
                } else {
                    walk(child, classes.concat(child.className ? [child.className] : []));
                }
            }
        })(code, []);
        const lines = [document.createElement('span')];
        for (const [text, classes] of pieces) {
            text.split('\n').forEach(function (part, i) {
                if (i > 0) {
                    lines.push(document.createElement('span'));
                }
                if (part === '') {
                    return;
                }
                let node = document.createTextNode(part);
                for (const name of classes.slice().reverse()) {
                    const span = document.createElement('span');
                    span.className = name;
                    span.appendChild(node);
                    node = span;
                }
                lines[lines.length - 1].appendChild(node);
            });
        }
        code.textContent = '';
        lines.forEach(function (line, i) {
            if (i > 0) {
                code.appendChild(document.createTextNode('\n'));
            }
            if (i === lines.length - 1 && !line.hasChildNodes()) {
                return; // after the last newline: an empty span would show a line
            }
            line.className = 'line';
            code.appendChild(line);
        });
    }

    for (const code of document.querySelectorAll('main pre > code')) {
        const command = code.classList.contains('language-console') ||
            code.classList.contains('language-sh');
        if (command && !drawing.test(code.textContent)) {
            code.classList.add('wraps');
            spanLines(code);
        } else if (code.classList.contains('language-rust')) {
            // The real code, as rustfmt made it (up to 100 columns, where
            // the column holds 87): a long line wraps at every width, and
            // goes on four columns further in than it starts.
            code.classList.add('wraps-code');
            spanLines(code);
            for (const line of code.querySelectorAll(':scope > .line')) {
                const indent = line.textContent.match(/^ */)[0].length + 4;
                line.style.paddingLeft = indent + 'ch';
                line.style.textIndent = -indent + 'ch';
            }
        }
        scrollers.push(code);
    }
    for (const table of document.querySelectorAll('main table')) {
        const headings = Array.from(table.querySelectorAll('thead th'), th => th.textContent.trim());
        for (const row of table.querySelectorAll('tbody tr')) {
            Array.from(row.children).forEach(function (cell, i) {
                if (headings[i]) {
                    cell.dataset.label = headings[i];
                }
            });
        }
        table.classList.add('cards');
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
