/**
 * A minimal event emitter that works the same in browsers and Node. Unlike Node's EventEmitter,
 * an 'error' event without a listener is dropped rather than thrown: a client library must not
 * crash an application that did not subscribe to its diagnostics.
 */
export class Emitter {
  #listeners = new Map();

  /**
   * Adds a listener.
   * @param {string} event
   * @param {(...args: any[]) => void} listener
   * @returns {() => void} a function that removes the listener
   */
  on(event, listener) {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /**
   * Adds a listener that runs once.
   * @param {string} event
   * @param {(...args: any[]) => void} listener
   * @returns {() => void}
   */
  once(event, listener) {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  /**
   * Removes a listener.
   * @param {string} event
   * @param {(...args: any[]) => void} listener
   */
  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
  }

  /**
   * Calls every listener of `event`. A throwing listener does not stop the others, nor the
   * client: the exception is reported asynchronously (as an uncaught error of that listener).
   * @param {string} event
   * @param {...any} args
   */
  emit(event, ...args) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        setTimeout(() => { throw err; }, 0);
      }
    }
  }
}
